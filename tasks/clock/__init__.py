"""The clock task: modular addition by a transformer with learned attention. See README.md."""
