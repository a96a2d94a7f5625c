"""Policy files: what loads, and one file:line:field line for what does not."""

import pytest

from agentladder.agents.guard import Guard, load_policy
from agentladder.errors import DataError, MissingFileError

GOOD = """\
name: pharmacy
pii: {entities: [PERSON, EMAIL, PHONE, SSN, CREDIT_CARD, IBAN, IP, DATE_OF_BIRTH, ADDRESS, MRN], action: mask}
denied_topics:
  - {name: investment-advice, examples: ["which stocks should I buy"], strength: high}
injection: {strength: medium, action: block}
apply_to: [input, output, tool_result]
"""


def test_the_issue_policy_loads(tmp_path):
    path = tmp_path / "guard.yaml"
    path.write_text(GOOD)
    policy = load_policy(path)
    assert policy.name == "pharmacy" and policy.pii.action == "mask" and len(policy.pii.entities) == 10
    assert policy.denied_topics[0].strength == "high" and policy.injection.where == ["input", "tool_result"]
    assert Guard.from_yaml(path).name == "pharmacy"


def test_name_defaults_to_the_file_and_data_paths_resolve(tmp_path):
    path = tmp_path / "team-a.yaml"
    path.write_text("denied_topics:\n  - {name: t, examples: [x], data: rows.jsonl}\n")
    policy = load_policy(path)
    assert policy.name == "team-a" and policy.denied_topics[0].data == str(tmp_path / "rows.jsonl")


@pytest.mark.parametrize(("text", "message"), [
    ("pii:\n  entities: [PERSON, EMAIL,\n    PASSPORT]\n", "guard.yaml:3: pii.entities[2]: Input should be 'PERSON'"),
    ("pii: {action: redact}\n", "guard.yaml:1: pii.action: Input should be 'mask', 'replace' or 'block'"),
    ("denied_topics:\n  - name: a\n    examples: [x]\n    strength: extreme\n",
     "guard.yaml:4: denied_topics[0].strength: Input should be 'low', 'medium' or 'high'"),
    ("injection:\n  strength: medium\n  action: warn\n", "guard.yaml:3: injection.action: Input should be 'block' or 'flag'"),
    ("apply_to: [input, logs]\n", "guard.yaml:1: apply_to[1]: Input should be 'input', 'output' or 'tool_result'"),
    ("pii: {actions: {SSN: shred}}\n", "guard.yaml:1: pii.actions.SSN: Input should be"),
    ("pii: {phone_regions: [US, XX]}\n", "guard.yaml:1: pii.phone_regions: unknown phone region 'XX'"),
    ("pii: {colour: red}\n", "guard.yaml:1: pii.colour: Extra inputs are not permitted"),
    ("denied_topics:\n  - {name: a, examples: []}\n", "guard.yaml:2: denied_topics[0].examples: List should have at least 1 item"),
    ("denied_topics:\n  - {name: a, examples: [x]}\n  - {name: a, examples: [y]}\n",
     "guard.yaml:3: denied_topics[1].name: two denied topics are named 'a'"),
    ("pii: [oops\n", "guard.yaml:2: invalid YAML"),
    ("- just a list\n", "guard.yaml: expected a mapping"),
])
def test_bad_policies_name_file_line_and_field(tmp_path, text, message):
    path = tmp_path / "guard.yaml"
    path.write_text(text)
    with pytest.raises(DataError) as err:
        load_policy(path)
    assert str(err.value).startswith(f"{tmp_path}/{message}"), str(err.value)


def test_missing_policy_file(tmp_path):
    with pytest.raises(MissingFileError):
        load_policy(tmp_path / "nope.yaml")
