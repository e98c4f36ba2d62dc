"""The likelihood-displacement guard: accepted answers losing probability while the reward margin grows.

Each training step logs, averaged over every rank's desirable examples,

    nll/chosen      = mean of -log pi_theta(y | x) / |y|     (nats per completion token, the policy)
    nll_ref/chosen  = mean of -log pi_ref(y | x) / |y|       (the same under the reference)

and their difference is how much likelihood the accepted answers lost against the reference,
per token, with

    nll_fallen/chosen = share of the desirable examples whose own difference exceeds the threshold

A KTO (or DPO) margin can grow by pushing the rejected answers down faster than the
accepted ones: the margin looks healthy while both fall, and sampled answers drift to text
nobody wrote (Razin et al., ICLR 2025; in `bench/alignment`, DPO's chosen answers fell from
-2.7 to -30.4 nats while its margin grew). A logging window shows displacement when over it
the drop exceeds `DISPLACEMENT_NATS_PER_TOKEN` while the margin is positive and more than half
of the accepted answers fell (`MAJORITY`). The guard warns once, at the end of the first
`WINDOWS` windows in a row that show it, if the margin over them grew (their mean margin above
the margin of the window before them, 0 at the start), with those windows' mean numbers, and
names what to change. One window holds a few dozen accepted answers and its numbers jump: the
quickstart (2026-12-05) showed it in one window of 113 (step 140: 0.19 nat, 60% fell) and in
neither neighbour, ending with its accepted answers at the reference's NLL and fewer garbled
answers than the base model's, while the same run without the SFT term shows it from step 65 in
most windows. Displacement moves the accepted answers as a whole; a minority falling far, enough to lift the mean, is what mislabelled rows do where the SFT
term lets them go (`kto_sft_gce_q`: on bench/alignment's 20% flipped labels the mean rose 0.1-0.2 nat
per token while held-out good answers kept their likelihood and garbled answers fell), and raising
`kto_sft_weight` would imitate them again.

The training rows alone cannot show a model that learns its accepted answers by heart while answers
to other prompts fall: on bench/alignment with 90% of the accepted rows removed, the 33 accepted
training answers rose (NLL 0.055 -> 0.004 a token) while held-out good answers lost 9 nats and 41% of
the sampled answers were garbled, and the guard stayed quiet. Where the run has an eval split
(`val_set_size`), `HeldOutDisplacementCallback` watches its accepted answers at each evaluation (the
whole split at once, so one evaluation is enough) and warns once when they fell by the same threshold,
more than half of them, while the eval margin is positive, naming fewer epochs first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainerCallback

from kto_plugin.log import get_logger
from kto_plugin.training.loss import SFT_WEIGHT_DEFAULT

LOG = get_logger(__name__)

NLL_CHOSEN = "nll/chosen"
REFERENCE_NLL_CHOSEN = "nll_ref/chosen"
MARGIN = "rewards/margins"
FALLEN_SHARE = "nll_fallen/chosen"
MAJORITY = 0.5
# 0.1 nat per token: a 40-token accepted answer about 55 times less likely than under the reference.
DISPLACEMENT_NATS_PER_TOKEN = 0.1
WINDOWS = 2  # logging windows in a row that must show displacement before the guard warns


def fell(nll, reference_nll):
    """Whether an accepted answer (or each, for tensors) lost more than the threshold per token against the reference:
    what `nll_fallen/chosen` counts."""
    return nll - reference_nll > DISPLACEMENT_NATS_PER_TOKEN


def _mean(values) -> float | None:
    values = list(values or [])
    return sum(values) / len(values) if values else None


def displacement_message(step: int, drop: float, nll: float, reference_nll: float, margin: float,
                         sft_weight: float, learning_rate: float, beta: float, fallen_share: float | None = None) -> str:
    weight_hint = (f"in force {sft_weight:g}; the default {SFT_WEIGHT_DEFAULT:g} pulls the accepted answers up"
                   if sft_weight < SFT_WEIGHT_DEFAULT
                   else f"in force {sft_weight:g}; higher pulls the accepted answers up harder")
    return (
        f"KTO: likelihood displacement at step {step}: the accepted answers' log-probability fell {drop:.2f} nats per "
        f"token below the reference's (NLL per token {nll:.2f} against {reference_nll:.2f}"
        f"{'' if fallen_share is None else f'; {fallen_share:.0%} of them fell'}) while the reward margin "
        f"grew to {margin:.3f}. The margin is growing by pushing answers down, and sampled answers drift to text "
        f"nobody wrote. Raise `kto_sft_weight` ({weight_hint}), lower `learning_rate` (now {learning_rate:g}), "
        f"or raise `rl_beta` (now {beta:g})."
    )


@dataclass
class Displacement:
    nll: float
    reference_nll: float
    margin: float
    fallen_share: float | None = None  # None in records of runs from before the share was logged

    @property
    def drop(self) -> float:
        """Nats per token the accepted answers lost against the reference."""
        return self.nll - self.reference_nll


@dataclass
class DisplacementGuard:
    """Watches each logging window's metrics and warns once (`check`); `observe` only decides."""

    threshold: float = DISPLACEMENT_NATS_PER_TOKEN
    warned_at_step: int | None = None
    recent: list[tuple[Displacement, bool]] = field(default_factory=list)  # the last windows, whether each shows it

    def observe(self, metrics: dict) -> Displacement | None:
        """The mean of the `WINDOWS` windows in a row that first show displacement while the margin grew, when this
        window ends them; else None."""
        margin = _mean(metrics.get(MARGIN))
        nll, reference_nll = _mean(metrics.get(NLL_CHOSEN)), _mean(metrics.get(REFERENCE_NLL_CHOSEN))
        if margin is None or nll is None or reference_nll is None:  # no margin yet, or no accepted row
            return None
        found = Displacement(nll, reference_nll, margin, _mean(metrics.get(FALLEN_SHARE)))
        # a minority falling is mislabelled rows let go, not displacement
        shows = margin > 0 and found.drop > self.threshold and (found.fallen_share is None or found.fallen_share > MAJORITY)
        self.recent = [*self.recent, (found, shows)][-(WINDOWS + 1):]
        run = [window for window, window_shows in self.recent[-WINDOWS:] if window_shows]
        if self.warned_at_step is not None or len(run) < WINDOWS:
            return None
        mean = Displacement(*(_mean(getattr(window, name) for window in run) for name in ("nll", "reference_nll", "margin")),
                            _mean(window.fallen_share for window in run if window.fallen_share is not None))
        margin_before = self.recent[0][0].margin if len(self.recent) > WINDOWS else 0.0
        return mean if mean.margin > margin_before else None

    def check(self, metrics: dict, step: int, sft_weight: float, learning_rate: float, beta: float) -> str | None:
        """Log the warning at this step if this window ends the first run of windows that show displacement; return it."""
        found = self.observe(metrics)
        if found is None:
            return None
        self.warned_at_step = step
        message = displacement_message(step, found.drop, found.nll, found.reference_nll, found.margin, sft_weight,
                                       learning_rate, beta, found.fallen_share)
        LOG.warning(message)
        return message


def first_displacement(records: list[dict], threshold: float = DISPLACEMENT_NATS_PER_TOKEN) -> dict | None:
    """The first training record of a finished run (`kto_metrics.jsonl`) where the guard would warn."""
    guard = DisplacementGuard(threshold=threshold)
    for record in records:
        keys = (NLL_CHOSEN, REFERENCE_NLL_CHOSEN, MARGIN, FALLEN_SHARE)
        if NLL_CHOSEN in record and guard.observe({key: [record[key]] for key in keys if key in record}):
            return record
    return None


EVAL_PREFIX = "eval_"


def held_out_displacement(record: dict, threshold: float = DISPLACEMENT_NATS_PER_TOKEN) -> Displacement | None:
    """The eval split's accepted answers (an evaluation's `eval_` metrics) as a `Displacement` where they fell: NLL per
    token more than `threshold` above the reference's, more than half of them, while the eval margin is positive."""
    values = [record.get(EVAL_PREFIX + key) for key in (NLL_CHOSEN, REFERENCE_NLL_CHOSEN, MARGIN, FALLEN_SHARE)]
    if any(value is None for value in values[:3]):  # no accepted row in the split, or no margin
        return None
    found = Displacement(*values)
    falls = found.margin > 0 and found.drop > threshold
    return found if falls and (found.fallen_share is None or found.fallen_share > MAJORITY) else None


def held_out_message(step: int, found: Displacement, epochs: float, learning_rate: float, sft_weight: float) -> str:
    return (
        f"KTO: the held-out accepted answers are falling at step {step}: on the eval split their log-probability is "
        f"{found.drop:.2f} nats per token below the reference's (NLL per token {found.nll:.2f} against "
        f"{found.reference_nll:.2f}{'' if found.fallen_share is None else f'; {found.fallen_share:.0%} of them fell'}) "
        f"while the eval reward margin is {found.margin:+.3f}. The model is learning its training answers by heart, and "
        f"answers to new prompts drift to text nobody wrote. Train fewer epochs (`num_epochs`, now {epochs:g}), lower "
        f"`learning_rate` (now {learning_rate:g}), or raise `kto_sft_weight` (the SFT term's weight in force: "
        f"{sft_weight:g})."
    )


def first_held_out_displacement(records: list[dict], threshold: float = DISPLACEMENT_NATS_PER_TOKEN) -> dict | None:
    """The first eval record of a finished run (`kto_metrics.jsonl`) where `HeldOutDisplacementCallback` would warn."""
    return next((record for record in records if held_out_displacement(record, threshold)), None)


class HeldOutDisplacementCallback(TrainerCallback):
    """Warns once, on the main process, when an evaluation shows the eval split's accepted answers falling."""

    def __init__(self, trainer):
        self.trainer = trainer
        self.warned_at_step: int | None = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        # an evaluation's record, as logged (the plugin's eval metrics join it in `log`, after `on_evaluate`'s metrics)
        if self.warned_at_step is not None or not state.is_world_process_zero or not logs:
            return
        found = held_out_displacement(logs)
        if found is None:
            return
        self.warned_at_step = state.global_step
        LOG.warning(held_out_message(state.global_step, found, args.num_train_epochs, args.learning_rate,
                                     getattr(self.trainer, "sft_weight", 0.0)))
