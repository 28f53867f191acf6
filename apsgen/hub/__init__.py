"""The Hugging Face Hub: the folder a build uploads (data + generated card), and the push with retries.

Tokens come from HF_TOKEN or the local credential store, read by huggingface_hub itself; nothing
here reads, prints, logs or writes one.
"""
