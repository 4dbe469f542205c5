"""Which of Cinder's init errors no retry can fix, as a table (docs/cinder.md shows it).

The reinit spec's list: configuration errors, a missing library or tool, and an unsupported driver
are unrecoverable; everything else (a backend that does not answer yet, a timeout, a refused
login that an admin may fix on the array) is retried. Cinder gives "a config file is missing" and
"a tool or library is missing" no class of their own: its drivers raise their usual exception
with a message that says so, so those rules read the text. A missing tool shows three ways: exit
127 from the shell (as root), exit 96 from ``cinder-rootwrap``'s filter (``RC_NOEXECFOUND``, the
usual non-root deployment), or ``FileNotFoundError`` when the command itself (``sudo``) is absent.
The first rule that matches decides; an engine takes another table through ``make_classifier``
(``Engine(classifier=...)``).
"""

from __future__ import annotations

import errno
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from statecore.cinder.imports import cfg, exception, processutils
from statecore.drivers import Classifier, default_classifier


def _always(error: BaseException) -> bool:
    return True


COMMAND_NOT_FOUND = frozenset({96, 127})
"""127: the shell found no such command; 96: ``cinder-rootwrap`` found none (oslo.rootwrap's RC_NOEXECFOUND)."""
_NOT_INSTALLED = re.compile(r"is not installed|librar(y|ies) not found", re.IGNORECASE)


def _command_not_found(error: BaseException) -> bool:
    return getattr(error, "exit_code", None) in COMMAND_NOT_FOUND


def _no_such_file(error: BaseException) -> bool:
    return getattr(error, "errno", None) == errno.ENOENT


def _names_config_file(error: BaseException) -> bool:
    return "config file" in str(error).lower()


def _says_not_installed(error: BaseException) -> bool:
    return _NOT_INSTALLED.search(str(error)) is not None


def _optional_module_missing(error: BaseException) -> bool:
    return str(error).startswith("'NoneType' object has no attribute")


def _invalid_endpoint(error: BaseException) -> bool:
    return str(error).startswith("Invalid endpoint")


@dataclass(frozen=True)
class Rule:
    """Errors of ``kind`` for which ``when`` holds are unrecoverable (or not); ``why`` is the table's reason."""

    kind: type[BaseException]
    unrecoverable: bool
    why: str
    when: Callable[[BaseException], bool] = _always
    condition: str = ""


def _boto_rules() -> tuple[Rule, ...]:
    """botocore comes with Cinder's S3 extra, not with Cinder: its rules exist where it is installed."""
    try:
        from botocore import exceptions as boto
    except ImportError:
        return ()
    keys = "the S3 access or secret key is unset (boto3 refuses the client)"
    config = "botocore refused the endpoint or region configuration"
    return (
        Rule(boto.PartialCredentialsError, True, keys),
        Rule(boto.NoCredentialsError, True, keys),
        Rule(boto.InvalidRegionError, True, config),
        Rule(boto.InvalidEndpointConfigurationError, True, config),
        Rule(boto.InvalidConfigError, True, config),
        Rule(ValueError, True, "botocore refused the endpoint URL (backup_s3_endpoint_url without a scheme, ...)",
             _invalid_endpoint, 'its message starts with "Invalid endpoint"'),
    )  # fmt: skip


CINDER_RULES: tuple[Rule, ...] = (
    Rule(exception.InvalidConfigurationValue, True, "an option's value is refused (the message names it)"),
    Rule(exception.ConfigNotFound, True, "a configuration file Cinder needs does not exist"),
    Rule(exception.RemoteFSException, True, "the shares config file is unset or missing (NFS and kin)",
         _names_config_file, "its message names a config file"),
    Rule(cfg.Error, True, "oslo.config refused the file or an option (required, malformed, unknown)"),
    Rule(processutils.ProcessExecutionError, True, "a tool the driver runs is not installed",
         _command_not_found, "exit code 127 (shell) or 96 (cinder-rootwrap)"),
    Rule(FileNotFoundError, True, "the command the driver runs (sudo, a tool) does not exist",
         _no_such_file, "errno ENOENT"),
    Rule(ImportError, True, "the driver or a library it needs cannot be imported"),
    Rule(exception.CinderException, True, "a tool or library the driver needs is missing (mount.nfs, rados, boto3)",
         _says_not_installed, 'its message says "is not installed" or "library/libraries not found"'),
    Rule(AttributeError, True, "an optional library is missing: Cinder left its module None (rados for RBD)",
         _optional_module_missing, "its message starts with \"'NoneType' object has no attribute\""),
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
