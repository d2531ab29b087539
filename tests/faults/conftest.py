from tests.smm.conftest import make_provider, sandbox_provider  # noqa: F401  (the SMM suites' fixtures)
