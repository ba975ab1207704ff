"""The Azure failover stack's provisioner: the Terraform (or OpenTofu) CLI on the azure/2-failover root module.

The drill shells out to the CLI the operator already uses, exactly as the runbook does
(`terraform apply -auto-approve`, `terraform output`), so its state and backend are the team's own.
Global options such as `-chdir` must come before the subcommand (Terraform rejects them after it).
`init` runs once before the first other command (a remote backend fails every command before it).
Credentials and variables travel in the environment only (drivers.terraform_stack builds it from
the target); argv holds no secret. stdout is streamed line by line to a log callback with known
secrets masked; `output -json` is never logged, since it carries sensitive outputs in clear text,
and each sensitive output's value is handed to `on_secret` (the run's masker) as soon as it is read.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from drill.ledger import Action

DESTROY_OP = "provisioner.destroy"
# Shown instead of a sensitive output's value, as Terraform itself prints it.
SENSITIVE = "(sensitive)"
STDERR_TAIL_LINES = 20
# Terraform stops cleanly on SIGINT (finishes in-flight calls, writes state, releases the lock);
# killing it outright can lose state of resources it just created. Give it this long first.
INTERRUPT_GRACE = 120.0
# Values shorter than this can't be masked without mangling ordinary text.
MIN_MASK_LEN = 4
_SECRET_ENV = re.compile(r"password|secret|token|key|credential", re.I)


class ProvisionerError(RuntimeError):
    def __init__(self, message: str, exit_code: int | None = None, stderr_tail: str = "") -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.stderr_tail = stderr_tail


def resolve_binary(binary: str | None = "terraform") -> str:
    """An executable path for `binary`; the default "terraform" falls back to "tofu" (OpenTofu)."""
    if binary and os.sep in binary:
        if os.path.isfile(binary) and os.access(binary, os.X_OK):
            return binary
        raise ProvisionerError(f"provisioner binary {binary!r} is not an executable file")
    candidates = ["terraform", "tofu"] if binary in (None, "", "terraform") else [binary]
    for name in candidates:
        found = shutil.which(name)
        if found:
            return found
    raise ProvisionerError(
        f"no {' or '.join(repr(c) for c in candidates)} executable on PATH: install Terraform/OpenTofu "
        "or set failover_stack.terraform_binary to its path"
    )


class TerraformCli:
    def __init__(
        self,
        chdir: Path,
        binary: str = "terraform",
        env: dict[str, str] | None = None,
        timeout: float = 3600,
        log: Callable[[str], None] | None = None,
        *,
        secrets: Iterable[str] = (),
        drop_inherited: Sequence[str] = (),
        drop_inherited_prefixes: Sequence[str] = (),
        on_secret: Callable[[Iterable[str]], None] | None = None,
    ) -> None:
        """`env` is added to this process's environment (ARM_* credentials, TF_VAR_*) after dropping
        the inherited names in `drop_inherited` and with `drop_inherited_prefixes`; values of
        secret-looking names there, and `secrets`, are masked in the log from the start.
        `on_secret` receives every sensitive output value once `output` has read it."""
        self.chdir = Path(chdir)
        self.binary = resolve_binary(binary)  # fail before the drill changes anything
        self.timeout = timeout
        self.log = log
        self.on_secret = on_secret
        inherited = {k: v for k, v in os.environ.items()
                     if k not in drop_inherited and not k.startswith(tuple(drop_inherited_prefixes))}
        # TF_IN_AUTOMATION trims "next steps" prose; checkpoint is Terraform's phone-home version check.
        self.env = {**inherited, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1", **(env or {})}
        self.sensitive_outputs: set[str] = set()
        self._mask: set[str] = set()
        self._initialized = False
        self._init_lock = threading.Lock()
        for k, v in (env or {}).items():
            if _SECRET_ENV.search(k):
                self._add_mask(v)
        for s in secrets:
            self._add_mask(s)

    def __repr__(self) -> str:
        return f"TerraformCli(chdir={str(self.chdir)!r}, binary={self.binary!r})"

    # -- commands ----------------------------------------------------------------------------------

    def init(self) -> None:
        """`terraform init` (once per object: the other commands call it first if nobody has)."""
        with self._init_lock:
            if not self._initialized:
                self._run(["init", "-input=false", "-no-color"])
                self._initialized = True

    def apply(self, targets: Sequence[str] = ()) -> dict[str, Any]:
        """Apply (optionally only `targets`, Terraform's -target) and return the outputs."""
        self.init()
        self._run(["apply", "-auto-approve", "-input=false", "-no-color", *(f"-target={t}" for t in targets)])
        return self.output()

    def output(self) -> dict[str, Any]:
        """All root outputs as plain values (sensitive ones included; their names in sensitive_outputs)."""
        self.init()
        res = self._run(["output", "-json", "-no-color"], stream=False)
        try:
            raw = json.loads(res.stdout or "{}")
        except json.JSONDecodeError as e:
            raise ProvisionerError(f"{self._name()} output -json printed something that isn't JSON: {e}") from None
        if not isinstance(raw, dict):
            raise ProvisionerError(f"{self._name()} output -json printed {type(raw).__name__}, expected an object")
        values: dict[str, Any] = {}
        for name, spec in raw.items():
            if isinstance(spec, dict) and "value" in spec:
                values[name] = spec["value"]
                if spec.get("sensitive"):
                    self.sensitive_outputs.add(name)
                    self._add_mask(spec["value"])
                    if self.on_secret is not None:
                        self.on_secret([s if isinstance(s, str) else json.dumps(s) for s in _leaves(spec["value"])])
            else:  # not the documented shape: keep it, but don't guess at sensitivity
                values[name] = spec
        return values

    def shown(self, outputs: dict[str, Any]) -> dict[str, Any]:
        """Outputs as they may be shown (Allure, evidence): sensitive values replaced, as Terraform does."""
        return {k: SENSITIVE if k in self.sensitive_outputs else v for k, v in outputs.items()}

    def destroy(self, targets: Sequence[str] = ()) -> None:
        self.init()
        self._run(["destroy", "-auto-approve", "-input=false", "-no-color", *(f"-target={t}" for t in targets)])

    def plan_is_clean(self) -> bool:
        """True if there is nothing to change (exit 0), False if changes are pending (exit 2)."""
        self.init()
        res = self._run(["plan", "-detailed-exitcode", "-input=false", "-no-color"], ok_codes=(0, 2))
        return res.returncode == 0

    # -- internals ---------------------------------------------------------------------------------

    def secret_values(self) -> list[str]:
        """Every value this CLI masks (credentials, variables, sensitive outputs read so far)."""
        return sorted(self._mask)

    def mask(self, text: str) -> str:
        for s in sorted(self._mask, key=len, reverse=True):
            text = text.replace(s, "***")
        return text

    def _add_mask(self, value: Any) -> None:
        for leaf in _leaves(value):
            s = leaf if isinstance(leaf, str) else json.dumps(leaf)
            if len(s) >= MIN_MASK_LEN:
                self._mask.add(s)

    def _name(self) -> str:
        return Path(self.binary).name

    def _run(self, args: list[str], stream: bool = True, ok_codes: Sequence[int] = (0,)) -> subprocess.CompletedProcess[str]:
        argv = [self.binary, f"-chdir={self.chdir}", *args]  # -chdir first: it's a global option
        what = f"{self._name()} {args[0]}"
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env,
            text=True, encoding="utf-8", errors="replace", bufsize=1,
            start_new_session=True,  # so a timeout can signal terraform and its provider plugins together
        )
        assert proc.stdout is not None and proc.stderr is not None
        err_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        out_lines: list[str] = []
        err_stream = proc.stderr  # narrowed above; a lambda would see proc.stderr as Optional again
        err_reader = threading.Thread(target=lambda: err_tail.extend(err_stream), daemon=True)
        err_reader.start()
        timed_out = threading.Event()

        def on_timeout() -> None:
            timed_out.set()
            _interrupt_then_kill(proc)

        timer = threading.Timer(self.timeout, on_timeout)
        timer.daemon = True
        timer.start()
        try:
            for line in proc.stdout:
                line = line.rstrip("\n")
                if stream:
                    if self.log is not None:
                        self.log(self.mask(line))
                else:
                    out_lines.append(line)
            rc = proc.wait()
        except BaseException:  # Ctrl-C / SIGTERM of the drill: let terraform stop cleanly, then re-raise
            _interrupt_then_kill(proc)
            raise
        finally:
            timer.cancel()
            err_reader.join(5)
            proc.stdout.close()
            proc.stderr.close()
        tail = self.mask("".join(err_tail).strip())
        if timed_out.is_set():
            raise ProvisionerError(f"{what} timed out after {self.timeout:.0f}s (exit {rc}): {tail}", rc, tail)
        if rc not in ok_codes:
            raise ProvisionerError(f"{what} failed (exit {rc}):\n{tail}", rc, tail)
        return subprocess.CompletedProcess(argv, rc, "\n".join(out_lines), tail)


def _interrupt_then_kill(proc: subprocess.Popen[str]) -> None:
    """SIGINT the process group (Terraform's graceful stop), then SIGKILL after INTERRUPT_GRACE."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(INTERRUPT_GRACE)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def _leaves(value: Any) -> Iterable[Any]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _leaves(v)
    elif value is not None:
        yield value


class NotCreatedByThisRun(ProvisionerError):
    """A destroy without proof that the drill created the stack: refused, the stack is left alone."""


def destroy_action(chdir: Path | str, binary: str, created_by_run: str, preflight: dict[str, Any]) -> Action:
    """The inverse of applying the stack, as ledger data, carrying the proof that this run creates it.

    Record it only when the drill creates the stack: `preflight` is what showed the stack absent
    before the first change (no outputs, a plan of creations only). An unwind refuses a destroy
    without that proof (a ledger written before the rule, or by hand): the stack stays.
    """
    return Action(
        op=DESTROY_OP,
        params={"chdir": str(chdir), "binary": binary, "created_by_run": created_by_run, "absent_before": preflight},
        description=f"destroy the failover stack in {chdir} (created by run {created_by_run})",
    )


def check_created_by_run(action: Action) -> None:
    """Refuse a destroy that does not prove the drill created the stack (NotCreatedByThisRun)."""
    p = action.params
    if not p.get("created_by_run") or not isinstance(p.get("absent_before"), dict):
        raise NotCreatedByThisRun(
            f"not destroying the failover stack in {p.get('chdir')}: nothing in the ledger shows that this run created it "
            "(no created_by_run and absent_before proof). A stack the drill did not create may be a real failover or a "
            "warm standby; if it is the drill's, destroy it with terraform yourself")


def execute_provisioner_action(action: Action, log: Callable[[str], None] | None = None,
                               cli: Callable[[Path, str], TerraformCli] | None = None) -> None:
    """Carry out a provisioner Action (e.g. from a persisted ledger, in a fresh process).

    `cli(chdir, binary)` makes the Terraform CLI with the target's environment (credentials,
    variables: a destroy needs them as much as an apply); the default has only this process's.
    """
    if action.op != DESTROY_OP:
        raise ValueError(f"not a provisioner operation: {action.op!r}")
    check_created_by_run(action)
    chdir, binary = Path(action.params["chdir"]), action.params.get("binary", "terraform")
    tf = cli(chdir, binary) if cli is not None else TerraformCli(chdir, binary, log=log)
    tf.destroy()
