import pickle

from pairforge.errors import ModelLoadError, UserError


class _Custom(UserError):
    def __init__(self, model: str, hint: str):
        super().__init__(f"model {model!r} could not be loaded; {hint}")


def test_user_errors_pickle_with_their_type_and_message():
    for err in (UserError("plain"), ModelLoadError("depth model /nope: not found"), _Custom("x", "run models pull")):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err)
        assert str(back) == str(err)
