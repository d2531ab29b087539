import pytest
from django.contrib.auth import get_user_model


@pytest.fixture
def merchant(db):
    return get_user_model().objects.create_user("merchant-a", password="x")


@pytest.fixture
def other_merchant(db):
    return get_user_model().objects.create_user("merchant-b", password="x")
