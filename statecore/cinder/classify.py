"""Which of Cinder's init errors no retry can fix, as a table (docs/cinder.md shows it).

The reinit spec's list: configuration errors, a missing library or tool, and an unsupported driver
are unrecoverable; everything else (a backend that does not answer yet, a timeout, a refused
login that an admin may fix on the array) is retried. Cinder gives "a config file is missing" no
class of its own: its NFS-style drivers raise a ``RemoteFSException`` whose text names the
missing or unset shares file, so that rule reads the text. The first rule that matches decides;
an engine takes another table through ``make_classifier`` (``Engine(classifier=...)``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from statecore.cinder.imports import cfg, exception, processutils
from statecore.drivers import Classifier, default_classifier


def _always(error: BaseException) -> bool:
    return True


def _command_not_found(error: BaseException) -> bool:
    return getattr(error, "exit_code", None) == 127


def _names_config_file(error: BaseException) -> bool:
    return "config file" in str(error).lower()


def _library_not_found(error: BaseException) -> bool:
    return "library not found" in str(error).lower()


@dataclass(frozen=True)
class Rule:
    """Errors of ``kind`` for which ``when`` holds are unrecoverable (or not); ``why`` is the table's reason."""

    kind: type[BaseException]
    unrecoverable: bool
    why: str
    when: Callable[[BaseException], bool] = _always
    condition: str = ""


def _boto_rules() -> tuple[Rule, ...]:
    """botocore comes with Cinder's S3 extra, not with Cinder: its rule exists where it is installed."""
    try:
        from botocore.exceptions import NoCredentialsError, PartialCredentialsError
    except ImportError:
        return ()
    why = "the S3 access or secret key is unset (boto3 refuses the client)"
    return (Rule(PartialCredentialsError, True, why), Rule(NoCredentialsError, True, why))


CINDER_RULES: tuple[Rule, ...] = (
    Rule(exception.InvalidConfigurationValue, True, "an option's value is refused (the message names it)"),
    Rule(exception.ConfigNotFound, True, "a configuration file Cinder needs does not exist"),
    Rule(exception.RemoteFSException, True, "the shares config file is unset or missing (NFS and kin)",
         _names_config_file, "its message names a config file"),
    Rule(cfg.Error, True, "oslo.config refused the file or an option (required, malformed, unknown)"),
    Rule(processutils.ProcessExecutionError, True, "a tool the driver runs is not installed",
         _command_not_found, "exit code 127"),
    Rule(ImportError, True, "the driver or a library it needs cannot be imported"),
    Rule(exception.BackupDriverException, True, "a library the backup driver needs is not installed (boto3, ...)",
         _library_not_found, "its message says a library is not found"),
    *_boto_rules(),
)  # fmt: skip
"""Checked after statecore's own unrecoverable errors (unsupported driver, config, missing library)."""


def make_classifier(rules: Sequence[Rule] = CINDER_RULES) -> Classifier:
    """statecore's default classifier, then ``rules`` in order; an error no rule matches is recoverable."""
    table = tuple(rules)

    def classify(error: BaseException) -> bool:
        if default_classifier(error):
            return True
        for rule in table:
            if isinstance(error, rule.kind) and rule.when(error):
                return rule.unrecoverable
        return False

    return classify


cinder_classifier = make_classifier()


def markdown_table(rules: Sequence[Rule] = CINDER_RULES) -> str:
    """The table docs/cinder.md shows, so the documented rules are the ones that run."""
    rows = ["| error | when | verdict | why |", "| --- | --- | --- | --- |"]
    for rule in rules:
        name = f"{rule.kind.__module__}.{rule.kind.__qualname__}"
        verdict = "unrecoverable" if rule.unrecoverable else "recoverable"
        rows.append(f"| `{name}` | {rule.condition or 'always'} | {verdict} | {rule.why} |")
    rows.append("| anything else | | recoverable | the backend may answer later |")
    return "\n".join(rows) + "\n"
