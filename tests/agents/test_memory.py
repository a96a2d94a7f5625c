"""Long-term memory: namespaces, isolation between users, history, sessions that follow, the benchmark."""

import pytest

from agentladder.agents import Agent, ScriptedChat, Store
from agentladder.agents.memory import Memory
from agentladder.agents.memory_bench import PHRASES, run_benchmark, scenario
from agentladder.errors import ConfigError
from agentladder.models.tiny import write_tiny_encoder


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    texts = [p for split in PHRASES.values() for group in ("state", "change", "ask") for p in split[group].values()]
    texts += [c for split in PHRASES.values() for c in split["chat"]]
    texts += ["I am allergic to penicillin", "my pharmacy is on Main Street", "what am I allergic to", "zebra"]
    return write_tiny_encoder(tmp_path_factory.mktemp("memory") / "enc", texts, seed=3)


def test_users_never_see_each_others_facts(tmp_path, encoder):
    memory = Memory(tmp_path / "agentladder.db", embedder=encoder)
    ann = memory.add("I am allergic to penicillin", user="ann")
    memory.add("my pharmacy is on Main Street", user="bob")
    assert [h.id for h in memory.search("what am I allergic to", user="ann", k=5)] == [ann]
    assert all(h.id != ann for h in memory.search("allergic to penicillin", user="bob", k=5))
    assert memory.search("anything", user="carol") == []
    with pytest.raises(ConfigError, match="no fact"):
        memory.update(ann, "hacked", user="bob")  # a fact id of another user is not found in bob's namespace
    with pytest.raises(ConfigError, match="no fact"):
        memory.delete(ann, user="bob")
    agent_fact = memory.add("prefers short answers", user="ann", agent="pharmacist")
    assert list(memory.facts(user="ann", agent="pharmacist")) == [agent_fact]
    assert agent_fact not in memory.facts(user="ann")
    with pytest.raises(ConfigError, match="without '/'"):
        memory.add("x", user="ann/bob")


def test_update_delete_history_and_a_later_session(tmp_path, encoder):
    db = tmp_path / "agentladder.db"
    first = Memory(db, embedder=encoder)
    fact = first.add("my pharmacy is on Main Street", user="ann")
    first.update(fact, "my pharmacy is on Elm Road", user="ann")
    later = Memory(Store(db), embedder=encoder)  # another session, another connection
    assert later.facts(user="ann") == {fact: "my pharmacy is on Elm Road"}
    later.delete(fact, user="ann")
    assert later.facts(user="ann") == {}
    changes = Memory(db, embedder=encoder).history(user="ann", fact=fact)
    assert [(c.event, c.old, c.new) for c in changes] == [
        ("add", None, "my pharmacy is on Main Street"),
        ("update", "my pharmacy is on Main Street", "my pharmacy is on Elm Road"),
        ("delete", "my pharmacy is on Elm Road", None)]
    assert Memory(db, embedder=encoder).history(user="bob") == []


def test_remember_updates_the_nearest_fact_only_above_the_threshold(encoder):
    always_new = Memory(":memory:", embedder=encoder, threshold=1.01)
    assert always_new.remember("I am allergic to penicillin", user="ann")[0] == "add"
    assert always_new.remember("I am allergic to penicillin", user="ann")[0] == "add"
    assert len(always_new.facts(user="ann")) == 2
    merging = Memory(":memory:", embedder=encoder, threshold=-1.0)
    _, first = merging.remember("I am allergic to penicillin", user="ann")
    assert merging.remember("my pharmacy is on Main Street", user="ann") == ("update", first)
    assert merging.facts(user="ann") == {first: "my pharmacy is on Main Street"}


def test_the_benchmark_scenarios_and_scores(encoder):
    users, questions = scenario("validation", 4)
    assert len(users) == 4 and len(questions) == 4 * 6
    assert sum(q.outdated is not None for q in questions) == 4 * 2
    assert all(q.outdated != q.current for q in questions)
    test_users, _ = scenario("test", 4)
    said = {s for _, lines in users for s in lines}
    assert not said & {s for _, lines in test_users for s in lines}  # each split in its own phrasings
    scores = run_benchmark("validation", 2, embedder=encoder, threshold=0.5)
    assert scores["leak"] == 0 and scores["questions"] == 12 and 0 <= scores["recall"] <= 1
    with pytest.raises(ConfigError):
        scenario("train", 1)


# -- facts extracted by a model, and an agent with long-term memory ------------------------------------------

CHAT = [{"role": "user", "content": "hi, I am allergic to penicillin and my pharmacy is on Main Street"},
        {"role": "assistant", "content": "Thanks, noted."}]


def test_extract_stores_the_models_facts_and_updates_a_changed_one(encoder):
    memory = Memory(":memory:", embedder=encoder, threshold=0.99)
    model = ScriptedChat(['Here: {"facts": ["I am allergic to penicillin", "my pharmacy is on Main Street"]}'])
    done = memory.extract(CHAT, model, user="ann")
    assert done.error is None and [c[0] for c in done.changes] == ["add", "add"]
    assert set(memory.facts(user="ann").values()) == {"I am allergic to penicillin", "my pharmacy is on Main Street"}
    prompt = model.calls[0]
    assert prompt[0].role == "system" and '{"facts"' in prompt[0].content
    assert "user: hi, I am allergic" in prompt[1].content and "assistant: Thanks, noted." in prompt[1].content
    # the same fact again (cosine 1.0 >= threshold) updates the stored one, history kept
    again = memory.extract(CHAT[:1], ScriptedChat(['{"facts": ["my pharmacy is on Main Street"]}']), user="ann")
    pharmacy = again.changes[0][1]
    assert again.changes[0][0] == "update" and len(memory.facts(user="ann")) == 2
    assert [c.event for c in memory.history(user="ann", fact=pharmacy)] == ["add", "update"]
    assert memory.facts(user="bob") == {}


@pytest.mark.parametrize("reply, error", [
    ("I cannot help with that", "no JSON object"),
    ('{"facts": "I am allergic to penicillin"}', "facts: Input should be a valid list"),
    ('{"facts": ["ok", ""]}', "facts.1: String should have at least 1 character"),
    ('{"facts": [' + ", ".join(['"x"'] * 21) + "]}", "more than 20"),
])
def test_a_bad_extraction_reply_stores_nothing_and_says_why(encoder, reply, error):
    memory = Memory(":memory:", embedder=encoder)
    done = memory.extract(CHAT, ScriptedChat([reply]), user="ann")
    assert error in done.error and done.changes == [] and done.reply == reply
    assert memory.facts(user="ann") == {}
    unreachable = memory.extract(CHAT, ScriptedChat([]), user="ann")  # the script is empty: the call fails
    assert "could not be asked" in unreachable.error and memory.facts(user="ann") == {}


def test_an_agent_recalls_its_users_facts_in_a_later_session_and_never_another_users(tmp_path, encoder):
    db = tmp_path / "agentladder.db"
    facts = {"hi, I am allergic to penicillin": '{"facts": ["I am allergic to penicillin"]}'}

    def model(messages):
        last = messages[-1].content
        if messages[0].content.startswith("You keep an assistant's long-term memory"):
            return next((v for k, v in facts.items() if k in last), '{"facts": []}')
        return "noted" if "allergic" in last else "answer"

    first = Agent(ScriptedChat(model), system="You are a pharmacist.", memory=Memory(db, embedder=encoder))
    run = first.run("hi, I am allergic to penicillin", user="ann")
    assert run.recalled == [] and [c[0] for c in run.remembered.changes] == ["add"]
    later_model = ScriptedChat(model)
    later = Agent(later_model, system="You are a pharmacist.", memory=Memory(db, embedder=encoder), learn=False)
    result = later.run("what am I allergic to", user="ann")  # another session, another Memory on the file
    assert result.recalled == ["I am allergic to penicillin"] and result.remembered is None
    system = later_model.calls[-1][0].content
    assert system.startswith("You are a pharmacist.") and "- I am allergic to penicillin" in system
    bob = later.run("what am I allergic to", user="bob")
    assert bob.recalled == [] and "penicillin" not in later_model.calls[-1][0].content
    with pytest.raises(ConfigError, match="run it for a user"):
        later.run("what am I allergic to")
    per_agent = Agent(ScriptedChat(model), name="pharmacist", memory=Memory(db, embedder=encoder),
                      memory_per_agent=True)
    assert per_agent.run("what am I allergic to", user="ann").recalled == []  # ann/pharmacist is its own namespace
