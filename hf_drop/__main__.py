"""`python -m hf_drop ...` (and so `accelerate launch -m hf_drop ...`)."""

from .cli import main

if __name__ == "__main__":
    main()
