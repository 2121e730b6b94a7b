import pytest
from tests.packages import test_verify as t

@pytest.mark.parametrize("form", list(t.FORMS))
def test_show(built, tmp_path, public_key, form):
    change, _ = t.FORMS[form]
    code, output = t._verify(t._write_raw(tmp_path, change(built.archive)), "--public-key", str(public_key))
    print("\n=== ", form, code); print(output)

@pytest.mark.parametrize("case", list(t.ENTRIES))
def test_show2(built, tmp_path, public_key, case):
    change, _ = t.ENTRIES[case]
    code, output = t._verify(t._write_raw(tmp_path, change(built.archive)), "--public-key", str(public_key))
    print("\n=== ", case, code); print(output)

def test_show3(built, tmp_path, public_key):
    print(t._verify(t._write_raw(tmp_path, built.archive))[1])
