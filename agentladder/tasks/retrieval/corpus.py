"""The pharmacy knowledge base: passages written from the packaged formulary and interaction table.

Every formulary drug gets four passages (dosing, how to take it, side effects, storage), every pair of
the interaction table one, and the pharmacy's policies one each. Passages name a drug by its generic
name only, as the formulary does: a question that says "Tylenol", "water pill" or "HCTZ" has to be
matched to "acetaminophen", "furosemide" or "hydrochlorothiazide" by the retriever, which is the
domain language an embedding model learns by fine-tuning. The figures are illustrative for a
synthetic benchmark, not clinical guidance.
"""

from __future__ import annotations

from agentladder.tasks.medication.formulary import Drug, fmt, formulary, interactions

ASPECTS = ("dosing", "use", "effects", "storage")
"""The passages written for each drug (ids ``drug:NAME:ASPECT``)."""

CLASS_WORDS = {
    "analgesic": "a pain and fever reliever", "nsaid": "a non-steroidal anti-inflammatory (NSAID)",
    "opioid": "an opioid pain medicine", "muscle_relaxant": "a muscle relaxant",
    "anticonvulsant": "an anticonvulsant also used for nerve pain", "triptan": "a triptan for migraine attacks",
    "antibiotic": "an antibiotic", "antiviral": "an antiviral for herpes infections",
    "antifungal": "an antifungal", "antidiabetic": "a medicine that lowers blood sugar",
    "ace_inhibitor": "an ACE inhibitor for blood pressure", "arb": "an angiotensin receptor blocker for blood pressure",
    "calcium_channel_blocker": "a calcium channel blocker for blood pressure",
    "beta_blocker": "a beta blocker for blood pressure and heart rate", "diuretic": "a diuretic",
    "statin": "a statin that lowers cholesterol", "antiplatelet": "an antiplatelet medicine",
    "anticoagulant": "an anticoagulant", "ssri": "an SSRI antidepressant",
    "antidepressant": "an antidepressant often used at night for sleep",
    "proton_pump_inhibitor": "a proton pump inhibitor that reduces stomach acid",
    "h2_blocker": "an H2 blocker that reduces stomach acid", "antiemetic": "a medicine against nausea and vomiting",
    "antihistamine": "an antihistamine for allergies", "leukotriene_antagonist": "a leukotriene blocker for asthma and allergies",
    "corticosteroid": "a corticosteroid that calms inflammation", "xanthine_oxidase_inhibitor": "a medicine that lowers uric acid to prevent gout",
    "alpha_blocker": "an alpha blocker that eases urination with an enlarged prostate",
    "thyroid": "a thyroid hormone replacement",
}

USE = {
    "analgesic": "Take with or without food. Count every product that contains it, since many cold remedies do.",
    "nsaid": "Take with food or milk to protect the stomach, with a full glass of water, at the lowest dose that works.",
    "opioid": "Take exactly as prescribed; do not drink alcohol or drive until you know how it affects you.",
    "muscle_relaxant": "Take at bedtime at first; it causes drowsiness, so avoid alcohol and driving.",
    "anticonvulsant": "Start low and increase slowly; do not stop suddenly. Space doses evenly through the day.",
    "triptan": "Take at the first sign of a migraine headache; a second dose may follow after 2 hours.",
    "antibiotic": "Finish the whole course even when you feel better; space doses evenly through the day.",
    "antiviral": "Start as soon as symptoms appear; drink plenty of water.",
    "antifungal": "A single dose is often enough for a vaginal yeast infection; other infections need longer courses.",
    "antidiabetic": "Take with meals to lower the chance of an upset stomach and low blood sugar.",
    "ace_inhibitor": "Take at the same time each day; get up slowly to avoid dizziness.",
    "arb": "Take at the same time each day, with or without food.",
    "calcium_channel_blocker": "Take once a day at the same time; grapefruit juice can raise its level.",
    "beta_blocker": "Do not stop suddenly; take with or right after a meal.",
    "diuretic": "Take in the morning so you are not up at night to urinate.",
    "statin": "Take at the same time each day; avoid large amounts of grapefruit juice.",
    "antiplatelet": "Take every day; tell your dentist or surgeon before any procedure.",
    "anticoagulant": "Take at the same time every day; keep your INR blood tests and keep vitamin K intake steady.",
    "ssri": "It takes 2 to 6 weeks to work; do not stop suddenly.",
    "antidepressant": "Take at bedtime; it causes drowsiness.",
    "proton_pump_inhibitor": "Take 30 to 60 minutes before breakfast; swallow whole.",
    "h2_blocker": "Take at bedtime or before a meal that causes heartburn.",
    "antiemetic": "Take 30 minutes before chemotherapy or as needed for nausea; the tablet can be swallowed whole.",
    "antihistamine": "Take once a day; it may be taken with or without food.",
    "leukotriene_antagonist": "Take once a day in the evening; it does not treat a sudden asthma attack.",
    "corticosteroid": "Take in the morning with food; a course longer than a few days is tapered, not stopped at once.",
    "xanthine_oxidase_inhibitor": "Take after a meal with plenty of water; a gout flare may happen in the first months.",
    "alpha_blocker": "Take 30 minutes after the same meal each day; do not crush or open the capsule.",
    "thyroid": "Take on an empty stomach, 30 to 60 minutes before breakfast, apart from calcium and iron.",
}

EFFECTS = {
    "analgesic": "Side effects are rare at normal doses; too much can cause serious liver damage.",
    "nsaid": "Common: heartburn, stomach pain, nausea. Serious: stomach bleeding (black stools), kidney problems, raised blood pressure.",
    "opioid": "Common: nausea, constipation, dizziness, drowsiness. Serious: slowed breathing, seizures, dependence.",
    "muscle_relaxant": "Common: drowsiness, dry mouth, dizziness. Serious: fast heartbeat, confusion.",
    "anticonvulsant": "Common: drowsiness, dizziness, swelling of the legs. Serious: mood changes, trouble breathing.",
    "triptan": "Common: tingling, flushing, tightness in the chest or throat. Serious: chest pain, stroke symptoms.",
    "antibiotic": "Common: diarrhoea, nausea, rash. Serious: severe watery diarrhoea, allergic reaction with swelling or hives.",
    "antiviral": "Common: headache, nausea, stomach pain. Serious: kidney problems, confusion in older people.",
    "antifungal": "Common: headache, nausea, stomach pain. Serious: liver problems, irregular heartbeat.",
    "antidiabetic": "Common: nausea, diarrhoea, low blood sugar (shaking, sweating). Serious: very low blood sugar.",
    "ace_inhibitor": "Common: a dry cough, dizziness. Serious: swelling of the face or tongue, high potassium.",
    "arb": "Common: dizziness, tiredness. Serious: high potassium, fainting.",
    "calcium_channel_blocker": "Common: swollen ankles, flushing, headache. Serious: fainting, fast heartbeat.",
    "beta_blocker": "Common: tiredness, cold hands and feet, slow pulse. Serious: shortness of breath, very slow heartbeat.",
    "diuretic": "Common: urinating more, thirst, dizziness. Serious: dehydration, low or high potassium (muscle cramps).",
    "statin": "Common: muscle aches, headache. Serious: unexplained muscle pain or weakness with dark urine.",
    "antiplatelet": "Common: bruising, nosebleeds. Serious: bleeding that will not stop, black stools.",
    "anticoagulant": "Common: bruising, bleeding gums. Serious: blood in urine or stool, severe headache.",
    "ssri": "Common: nausea, trouble sleeping, sexual side effects. Serious: thoughts of self-harm in young people, serotonin syndrome.",
    "antidepressant": "Common: drowsiness, dizziness, dry mouth. Serious: a painful erection that lasts, irregular heartbeat.",
    "proton_pump_inhibitor": "Common: headache, diarrhoea. Serious with long use: low magnesium, bone fractures.",
    "h2_blocker": "Common: headache, constipation or diarrhoea. Serious: confusion in older people.",
    "antiemetic": "Common: headache, constipation. Serious: irregular heartbeat (QT prolongation).",
    "antihistamine": "Common: drowsiness, dry mouth. Serious: trouble urinating, confusion in older people.",
    "leukotriene_antagonist": "Common: headache, stomach pain. Serious: mood changes, bad dreams, suicidal thoughts.",
    "corticosteroid": "Common: raised appetite, trouble sleeping, mood swings, raised blood sugar. Serious with long use: bone loss, infections.",
    "xanthine_oxidase_inhibitor": "Common: rash, gout flares at the start. Serious: severe skin reactions.",
    "alpha_blocker": "Common: dizziness on standing, runny nose, abnormal ejaculation. Serious: fainting.",
    "thyroid": "Too much: fast heartbeat, sweating, weight loss, trouble sleeping.",
}

STORAGE = {
    "tablet": "Store the tablets at room temperature (15-30 C) in the original container, away from moisture: not in a bathroom.",
    "capsule": "Store the capsules at room temperature (15-30 C), tightly closed, away from heat and humidity.",
}
STORAGE_EXTRA = {
    "amoxicillin": "The mixed liquid suspension is kept in the fridge and thrown away after 14 days.",
    "cephalexin": "The mixed liquid suspension is kept in the fridge and thrown away after 14 days.",
    "azithromycin": "The mixed liquid suspension is kept at room temperature and used within 10 days.",
    "nitrofurantoin": "Keep out of light; the capsules darken if left in the sun.",
    "levothyroxine": "Keep away from light and humidity; potency drops in a hot car.",
    "tramadol": "It is a controlled substance: keep it locked away from others.",
    "warfarin": "Keep away from light; tablet colour shows the strength, so keep strengths apart.",
}

POLICIES = {
    "refills": "Refill policy: prescriptions can be refilled once 75% of the supply has been used. Request a refill by "
               "phone, app or at the counter; most refills are ready within 24 hours.",
    "controlled": "Controlled substances (opioids such as tramadol, some sleep and ADHD medicines) cannot be refilled "
                  "early; lost or stolen supplies need a police report and a new prescription.",
    "returns": "Returns: dispensed medicines cannot be returned or exchanged once they leave the pharmacy, for "
               "safety reasons, except when the pharmacy made a dispensing error.",
    "disposal": "Disposal of unused medicines: bring expired or unwanted medicines to the take-back box by the "
                "pharmacy entrance; do not flush them or throw them in household trash.",
    "generics": "Generic substitution: the pharmacy dispenses the generic equivalent unless the prescriber wrote "
                "'dispense as written' or the patient asks for the brand and pays the difference.",
    "transfer": "Transfers: a prescription can be transferred to or from another pharmacy by giving us the other "
                "pharmacy's name and phone number; controlled substances can be transferred only once.",
    "prior-authorization": "Prior authorization: when insurance requires approval before paying, the pharmacy "
                           "contacts the prescriber; approval usually takes 2 to 5 business days.",
    "vaccines": "Vaccinations: flu, COVID-19, shingles and tetanus vaccines are given without an appointment "
                "during pharmacy hours to anyone 12 and older.",
    "delivery": "Home delivery: prescriptions are delivered free within 10 miles on the next business day; "
                "someone 18 or older must sign for controlled substances.",
    "hours": "Pharmacy hours: Monday to Friday 8 am to 9 pm, weekends 9 am to 6 pm; the pharmacist can be reached "
             "by phone after hours for urgent questions.",
}


def _strengths(drug: Drug) -> str:
    unit = "mcg" if drug.name == "levothyroxine" else "mg"
    scale = 1000 if unit == "mcg" else 1
    values = ", ".join(fmt(s * scale) for s in drug.strengths_mg)
    return f"{values} {unit} {drug.form}s; at most {fmt(drug.max_daily_mg * scale)} {unit} in 24 hours"


def drug_passages(drug: Drug) -> dict[str, str]:
    """The four passages of one drug, by aspect."""
    name, cls = drug.name.capitalize(), drug.drug_class
    extra = STORAGE_EXTRA.get(drug.name, "")
    return {
        "dosing": f"{name} dosing: {name} is {CLASS_WORDS[cls]}. It comes as {_strengths(drug)} for adults. "
                  f"Do not take more than the daily maximum; ask the pharmacist about doses for children.",
        "use": f"How to take {drug.name}: {USE[cls]} If you miss a dose of {drug.name}, take it when you remember "
               f"unless the next dose is near; never take two doses at once.",
        "effects": f"Side effects of {drug.name}: {EFFECTS[cls]} Call your doctor about any serious effect.",
        "storage": f"Storing {drug.name}: {STORAGE[drug.form]} {extra}".strip() + " Keep out of reach of children.",
    }


def interaction_id(a: str, b: str) -> str:
    """The passage id of the interaction between ``a`` and ``b`` (either order)."""
    x, y = sorted((a, b))
    return f"interaction:{x}+{y}"


def build_corpus() -> list[dict[str, str]]:
    """Every passage as ``{"id", "text", "kind"}``: drugs' four aspects, interactions, policies."""
    rows = []
    for drug in formulary().values():
        for aspect, text in drug_passages(drug).items():
            rows.append({"id": f"drug:{drug.name}:{aspect}", "text": text, "kind": aspect})
    for item in interactions():
        text = (f"Interaction between {item.drug_a} and {item.drug_b} ({item.severity}): taking them together "
                f"carries {item.effect}. Ask the pharmacist or prescriber before combining them.")
        rows.append({"id": interaction_id(item.drug_a, item.drug_b), "text": text, "kind": "interaction"})
    for key, text in POLICIES.items():
        rows.append({"id": f"policy:{key}", "text": text, "kind": "policy"})
    return rows


__all__ = ["ASPECTS", "POLICIES", "build_corpus", "drug_passages", "interaction_id"]
