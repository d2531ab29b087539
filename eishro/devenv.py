"""Write a development `.env` (git-ignored) with fresh secrets, once. Run by `make`."""

import secrets
import sys
from pathlib import Path

from cryptography.fernet import Fernet


def main(path=".env"):
    target = Path(path)
    if target.exists():
        return 0
    target.write_text(
        "# Development settings written by `make` on first use. Never commit this file.\n"
        "DEBUG=1\n"
        f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
        f"FIELD_ENCRYPTION_KEYS={Fernet.generate_key().decode()}\n"
    )
    target.chmod(0o600)
    print(f"wrote {target} with new development keys")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
