"""Tiny randomly initialised models of the default architecture, for fast tests.

The tokenizer is byte-level (256 byte tokens plus ChatML's special tokens)
and uses SmolLM2's chat template, so everything that tokenises conversations
behaves as with the real model, on a model that runs a step in milliseconds.
"""

from __future__ import annotations

import torch

SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def tiny_tokenizer():
    """A byte-level tokenizer with ChatML special tokens and SmolLM2's chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    core = Tokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(alphabet)}, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token="<|im_start|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    tok.chat_template = SMOLLM2_CHAT_TEMPLATE
    return tok


def tiny_model(*, tokenizer=None, hidden_size: int = 64, num_layers: int = 2, seed: int = 0):
    """A small Llama (SmolLM2's architecture) with seeded random weights.

    The global RNG is left untouched, so creating a model never shifts a test's randomness.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tokenizer or tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model


def write_tiny_encoder(folder, texts, *, hidden_size: int = 32, num_layers: int = 2, seed: int = 0) -> str:
    """A tiny randomly initialised BERT sentence encoder saved as a sentence-transformers folder.

    Its WordPiece vocabulary is the lower-cased words of ``texts`` (and their letters), so it needs no
    download; mean pooling over the tokens, as the packaged MiniLM. For tests of embedding training and
    retrieval mechanics, in seconds.
    """
    import os
    import re
    import tempfile

    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = sorted({w for t in texts for w in re.findall(r"\w+", t.lower())})
    letters = sorted({ch for w in words for ch in w})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters, *[f"##{c}" for c in letters],
             *[w for w in words if w not in letters]]
    vocab += sorted({ch for t in texts for ch in t if not ch.isalnum() and not ch.isspace()} - set(vocab))
    folder = str(folder)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden_size, num_hidden_layers=num_layers,
                        num_attention_heads=2, intermediate_size=2 * hidden_size, max_position_embeddings=128)
    with tempfile.TemporaryDirectory() as tmp:
        vocab_file = os.path.join(tmp, "vocab.txt")
        with open(vocab_file, "w", encoding="utf-8") as fh:
            fh.write("\n".join(vocab) + "\n")
        BertTokenizerFast(vocab_file, do_lower_case=True).save_pretrained(tmp)
        BertModel(config).save_pretrained(tmp)
        word = models.Transformer(tmp, max_seq_length=64)
        encoder = SentenceTransformer(modules=[word, models.Pooling(hidden_size, pooling_mode="mean")], device="cpu")
        encoder.save(folder)
    return folder
