"""The public surface grows only on purpose."""

import agentladder.data
import agentladder.models
import agentladder.train


def test_public_names():
    assert sorted(agentladder.train.__all__) == [
        "ClassifierResult", "LossOutput", "PreferenceConfig", "RLConfig", "SFTConfig", "TrainConfig", "TrainResult", "Trainer",
        "preference", "rl", "sft", "train_classifier", "train_lora_classifier",
    ]
    assert sorted(agentladder.data.__all__) == [
        "Conversation", "DataError", "MarkedResponse", "Message", "PreferencePair", "RLPrompt", "TextRow",
        "ToolCall", "atomic_write_text", "from_hf_dataset", "iter_jsonl", "load_rows", "read_jsonl",
        "to_hf_dataset", "write_jsonl",
    ]
    assert sorted(agentladder.models.__all__) == [
        "ALIASES", "DEFAULT_MODEL", "LoraSettings", "ModelLoadError", "TokenizedRow", "attach_lora", "generate",
        "load_adapter", "load_model", "load_tokenizer", "merge", "prompt_ids", "reference_mode", "render",
        "resolve", "save_adapter", "tiny_model", "tiny_tokenizer", "tokenize_conversation", "tokenize_text",
    ]
    for module in (agentladder.data, agentladder.models, agentladder.train):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
