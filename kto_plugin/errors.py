"""The plugin's errors: problems a user can fix, each message saying what to change.

Every error the plugin raises on purpose derives from `KTOPluginError`. The command line
turns one into a one-line `Error: ...` and exit status 1 in one place (`cli.KTOGroup`);
the studio shows one as a line in the page (`studio.page_messages`); inside `axolotl train`,
`preprocess` and the other Axolotl commands, one that reaches the top of the process is
printed the same way by `print_user_errors_plainly` (the plugin installs it when it is
registered). Any other exception is a bug: all of them show it with its traceback.

The subclasses also derive from the built-in error a caller would catch without knowing
the plugin (`ValueError`, `FileNotFoundError`), so code written against those keeps working.
"""

from __future__ import annotations


class KTOPluginError(Exception):
    """A problem with the user's config, data, files or run that the message says how to fix."""


class ConfigError(KTOPluginError, ValueError):
    """A config key or a command-line option that cannot be used as given."""


class DataError(KTOPluginError, ValueError):
    """A data file or row that cannot be read or trained on."""


class MissingFileError(KTOPluginError, FileNotFoundError):
    """A file or folder the command needs is not there (a run not trained yet, a missing sheet)."""


class RunFailedError(KTOPluginError, RuntimeError):
    """A step the plugin ran for the user (an `axolotl` command, a training child) failed; the message has its log."""


class BusyError(KTOPluginError, RuntimeError):
    """One at a time: the thing asked for is already going (a training run in the studio)."""


def is_user_error(err: BaseException) -> bool:
    """The plugin's own errors, and a file the user named that is missing or unreadable; anything else is a bug."""
    return isinstance(err, KTOPluginError) or (isinstance(err, OSError) and getattr(err, "filename", None) is not None)


def _user_error_hook(previous):
    def hook(kind, err, traceback):
        if is_user_error(err):
            import sys

            sys.stderr.write(f"\nError: {err}\n")
            sys.stderr.flush()
            return
        previous(kind, err, traceback)

    hook.kto_plugin = True
    return hook


def print_user_errors_plainly() -> None:
    """From now on, a plugin error that ends the process prints as `Error: <message>`, without a traceback (exit
    status 1, as before); any other exception keeps its traceback. For Axolotl's commands, where the plugin runs
    inside Axolotl's own code and cannot catch its errors at the top."""
    import sys

    if not getattr(sys.excepthook, "kto_plugin", False):
        sys.excepthook = _user_error_hook(sys.excepthook)
