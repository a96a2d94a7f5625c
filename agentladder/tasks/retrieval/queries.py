"""Questions about the pharmacy knowledge base, in the words people use, one family of phrasings per split.

A question names a drug the way a customer would: a brand name ("Zoloft", "Z-Pak"), a lay term
("water pill"), an abbreviation ("HCTZ", "APAP") or the generic name, often in lower case and
sometimes misspelt. The drug vocabulary is the domain's and every split uses it; how a question is
worded is not: ``train``, ``validation`` and ``test`` each have their own family of templates
(and of policy questions), so the test figure measures questions written unlike anything the model
was trained on, not recall of the training templates. No question text appears in two splits.
"""

from __future__ import annotations

import random

from agentladder.errors import ConfigError
from agentladder.tasks.medication.formulary import formulary, interactions
from agentladder.tasks.retrieval.corpus import POLICIES, interaction_id

ALIASES = {
    "acetaminophen": ["Tylenol", "paracetamol", "APAP"], "ibuprofen": ["Advil", "Motrin"],
    "naproxen": ["Aleve", "Naprosyn"], "meloxicam": ["Mobic"], "aspirin": ["Bayer", "ASA", "baby aspirin"],
    "tramadol": ["Ultram"], "cyclobenzaprine": ["Flexeril", "muscle relaxer"], "gabapentin": ["Neurontin"],
    "sumatriptan": ["Imitrex", "migraine pill"], "amoxicillin": ["Amoxil", "amox"], "cephalexin": ["Keflex"],
    "azithromycin": ["Zithromax", "Z-Pak", "zpack"], "ciprofloxacin": ["Cipro"],
    "doxycycline": ["Vibramycin", "doxy"], "nitrofurantoin": ["Macrobid", "Macrodantin"],
    "clarithromycin": ["Biaxin"], "valacyclovir": ["Valtrex", "cold sore pill"],
    "fluconazole": ["Diflucan", "yeast infection pill"], "metformin": ["Glucophage", "Glumetza"],
    "glipizide": ["Glucotrol"], "lisinopril": ["Zestril", "Prinivil"], "losartan": ["Cozaar"],
    "amlodipine": ["Norvasc"], "metoprolol": ["Lopressor", "Toprol XL"], "carvedilol": ["Coreg"],
    "hydrochlorothiazide": ["HCTZ", "Microzide"], "furosemide": ["Lasix", "water pill"],
    "spironolactone": ["Aldactone", "spiro"], "atorvastatin": ["Lipitor"], "simvastatin": ["Zocor"],
    "clopidogrel": ["Plavix"], "warfarin": ["Coumadin", "Jantoven"], "sertraline": ["Zoloft"],
    "fluoxetine": ["Prozac"], "citalopram": ["Celexa"], "escitalopram": ["Lexapro"],
    "trazodone": ["Desyrel"], "omeprazole": ["Prilosec"], "pantoprazole": ["Protonix"],
    "famotidine": ["Pepcid"], "ondansetron": ["Zofran", "nausea pill"], "cetirizine": ["Zyrtec"],
    "loratadine": ["Claritin"], "diphenhydramine": ["Benadryl"], "montelukast": ["Singulair"],
    "prednisone": ["Deltasone", "pred", "steroid pills"], "allopurinol": ["Zyloprim", "gout pill"],
    "tamsulosin": ["Flomax"], "levothyroxine": ["Synthroid", "levo", "thyroid pill"],
}
"""Brand names, lay terms and abbreviations of each formulary drug (each names only that drug)."""

TEMPLATES: dict[str, dict[str, list[str]]] = {
    "train": {
        "dosing": ["how much {d} can i take in a day", "max dose of {d}", "what strengths does {d} come in",
                   "{d} daily limit", "is it ok to take 3 {d} at once", "how many mg of {d} per day"],
        "use": ["should i take {d} with food", "best time of day to take {d}", "forgot my {d} what do i do",
                "how do i take {d}", "can i take {d} on an empty stomach"],
        "effects": ["side effects of {d}", "does {d} make you sleepy", "could {d} be why i feel sick",
                    "what are the risks of {d}", "common reactions to {d}"],
        "storage": ["how do i store {d}", "does {d} need to go in the fridge", "can i keep {d} in the bathroom",
                    "storage for {d}"],
        "interaction": ["can i take {a} with {b}", "is it ok to mix {a} and {b}", "{a} and {b} together",
                        "does {a} interact with {b}"],
    },
    "validation": {
        "dosing": ["what's the most {d} allowed per 24 hours", "{d} max mg a day?", "which doses of {d} are there"],
        "use": ["{d} empty stomach or after eating?", "missed a dose of {d} yesterday", "tips for taking {d}"],
        "effects": ["{d} problems to watch out for", "been dizzy since starting {d}, is that normal"],
        "storage": ["left my {d} in a hot car, still ok?", "where should {d} be kept at home"],
        "interaction": ["{a} plus {b} safe?", "doctor gave me {b} but i'm already on {a}"],
    },
    "test": {
        "dosing": ["upper limit for {d} in one day", "how many {d} pills is too many", "adult dose of {d}?"],
        "use": ["instructions for using {d}", "morning or night for {d}?", "{d} before or after breakfast"],
        "effects": ["bad reactions to {d}", "what can {d} do to my body", "{d} giving me stomach trouble?"],
        "storage": ["right temperature to keep {d}", "how should i keep my {d} so it doesn't go bad"],
        "interaction": ["any problem taking {b} while on {a}", "{a} with {b}, dangerous combo?",
                        "i take {a}, can i add {b}"],
    },
}
"""Each split's own wording of a question about a drug (``{d}``) or a pair of drugs (``{a}``, ``{b}``)."""

POLICY_QUESTIONS: dict[str, dict[str, list[str]]] = {
    "refills": {"train": ["when can i refill my prescription", "how early can i get a refill"],
                "validation": ["running low, can i reorder my meds now"],
                "test": ["is it too soon to pick up my next supply"]},
    "controlled": {"train": ["can i get my painkillers refilled early", "lost my opioid pills what now"],
                   "validation": ["someone stole my tramadol, can i get more"],
                   "test": ["early refill on a narcotic prescription?"]},
    "returns": {"train": ["can i return medicine i don't need", "refund for unopened pills"],
                "validation": ["bought the wrong meds, can i bring them back"],
                "test": ["exchange a prescription i picked up yesterday?"]},
    "disposal": {"train": ["how do i get rid of old medicine", "where to throw away expired pills"],
                 "validation": ["is it ok to flush leftover tablets"],
                 "test": ["what to do with my late mother's medications"]},
    "generics": {"train": ["why did i get the generic instead of the brand", "can i ask for the brand name"],
                 "validation": ["my pills look different, did you switch to a cheaper version"],
                 "test": ["i want the name-brand drug not the copy"]},
    "transfer": {"train": ["move my prescription from another pharmacy", "transfer a script to you"],
                 "validation": ["switching pharmacies, how do i bring my prescriptions"],
                 "test": ["my old drugstore has my refills, can you take them over"]},
    "prior-authorization": {"train": ["insurance won't pay until approval, what happens", "what is a prior auth"],
                            "validation": ["my plan needs my doctor to okay the drug first"],
                            "test": ["how long does insurance pre-approval take"]},
    "vaccines": {"train": ["can i get a flu shot without an appointment", "do you do covid vaccines"],
                 "validation": ["walk in for a shingles jab?"],
                 "test": ["is my 13 year old able to get a tetanus shot here"]},
    "delivery": {"train": ["do you deliver prescriptions", "can my meds be sent to my house"],
                 "validation": ["how much is home delivery"],
                 "test": ["can a courier bring my pills tomorrow"]},
    "hours": {"train": ["what time do you close", "are you open on sunday"],
              "validation": ["opening hours on saturday"],
              "test": ["can i reach a pharmacist late at night"]},
}
"""Each split's own questions about each policy passage."""

SPLITS = ("train", "validation", "test")
ASPECT_SHARE = 0.84
"""Share of drug-aspect questions; the rest ask about interactions (and each policy question is asked once)."""


def misspell(word: str, rng: random.Random) -> str:
    """``word`` with one typing slip: a letter dropped, doubled, swapped with the next, or a vowel changed."""
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(("drop", "double", "swap", "vowel"))
    if kind == "drop":
        return word[:i] + word[i + 1:]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    vowels = [j for j, ch in enumerate(word) if ch in "aeiou" and j > 0]
    if not vowels:
        return word[:i] + word[i + 1:]
    j = rng.choice(vowels)
    return word[:j] + rng.choice([v for v in "aeiou" if v != word[j]]) + word[j + 1:]


def say(drug: str, rng: random.Random) -> str:
    """How a customer names ``drug``: generic 25 %, an alias 55 %, either misspelt 20 %; often lower case."""
    roll = rng.random()
    name = drug if roll < 0.25 else rng.choice(ALIASES[drug])
    if roll >= 0.8:
        name = " ".join(misspell(w, rng) for w in name.split())
    return name.lower() if rng.random() < 0.7 else name


def _drug_question(split: str, rng: random.Random) -> tuple[str, str]:
    drug = rng.choice(sorted(formulary()))
    aspect = rng.choice(("dosing", "use", "effects", "storage"))
    text = rng.choice(TEMPLATES[split][aspect]).format(d=say(drug, rng))
    return text, f"drug:{drug}:{aspect}"


def _interaction_question(split: str, rng: random.Random) -> tuple[str, str]:
    item = rng.choice(interactions())
    a, b = (item.drug_a, item.drug_b) if rng.random() < 0.5 else (item.drug_b, item.drug_a)
    text = rng.choice(TEMPLATES[split]["interaction"]).format(a=say(a, rng), b=say(b, rng))
    return text, interaction_id(a, b)


def _key(text: str) -> str:
    return " ".join(text.lower().split())


def _other_splits_texts(split: str, n: int, seed: int) -> set[str]:
    """Texts a split may not use: the earlier splits' (test, then validation, then train) at the default sizes."""
    order = list(reversed(SPLITS))
    before = order[:order.index(split)]
    return {_key(q["text"]) for other in before for q in generate_queries(other, DEFAULT_SIZES[other], seed)}


DEFAULT_SIZES = {"train": 3000, "validation": 300, "test": 500}


def generate_queries(split: str, n: int, seed: int = 0) -> list[dict]:
    """``n`` distinct questions ``{"id", "text", "relevant": [passage id]}`` of ``split``, from ``seed``.

    Policy questions come first (each of the split's once), then drug and interaction questions; no
    text is one that the test split (for validation) or the test and validation splits (for train)
    use at their default sizes, so the splits share no question.
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    if n < 0:
        raise ConfigError(f"n must be at least 0, not {n}")
    taken = _other_splits_texts(split, n, seed) if split != "test" else set()
    rng = random.Random(f"pharmacy-kb:{split}:{seed}")
    drawn = [(text, f"policy:{key}") for key in POLICIES for text in POLICY_QUESTIONS[key][split]]
    for _ in range(50 * n + 100):
        if len(drawn) >= 4 * n:
            break
        drawn.append(_drug_question(split, rng) if rng.random() < ASPECT_SHARE else _interaction_question(split, rng))
    rows, seen = [], set(taken)
    for text, doc in drawn:
        if len(rows) >= n:
            break
        if _key(text) in seen:
            continue
        seen.add(_key(text))
        rows.append({"id": f"q-{split}-{len(rows) + 1:05d}", "text": text, "relevant": [doc]})
    if len(rows) < n:
        raise ConfigError(f"could draw only {len(rows)} distinct {split} questions of {n}")
    return rows


__all__ = ["ALIASES", "DEFAULT_SIZES", "POLICY_QUESTIONS", "SPLITS", "TEMPLATES", "generate_queries", "misspell",
           "say"]
