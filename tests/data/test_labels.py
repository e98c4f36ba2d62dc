import pytest

from kto_plugin.data.labels import InvalidLabelError, parse_label


@pytest.mark.parametrize(
    "value",
    [True, 1, 1.0, "true", "TRUE", "Yes", "accept", "Accept", "good", "GOOD", " yes ", "1"],
)
def test_desirable_spellings(value):
    assert parse_label(value) is True


@pytest.mark.parametrize(
    "value",
    [False, 0, 0.0, "false", "False", "no", "NO", "reject", "Reject", "bad", "Bad", "0"],
)
def test_undesirable_spellings(value):
    assert parse_label(value) is False


@pytest.mark.parametrize("value", [None, 2, -1, 0.5, "maybe", "", "accepted?", [1], "truthy"])
def test_anything_else_is_an_error_that_names_the_value(value):
    with pytest.raises(InvalidLabelError) as err:
        parse_label(value)
    assert repr(value) in str(err.value)
