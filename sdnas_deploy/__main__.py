"""``python -m sdnas_deploy`` (and ``torchrun ... -m sdnas_deploy search|train``) runs the ``sdnas`` CLI."""

from .cli.main import main

if __name__ == "__main__":
    main()
