"""The Axolotl plugin: hooks only; the work lives in the modules they call."""

from __future__ import annotations

from axolotl.integrations.base import BasePlugin

from kto_plugin.distributed.cpu_ranks import (
    cuda_available,
    let_axolotl_ranks_run_on_cpu,
    place_ranks_on_cpu,
    training_args_for_cpu_ranks,
)
from kto_plugin.distributed.zero_configs import resolve_deepspeed
from kto_plugin.embedded.uris import is_plugin_uri, resolve_dataset_uri, resolve_model_uri
from kto_plugin.embedded.warm_model import WARM_MODEL_URI
from kto_plugin.errors import ConfigError, print_user_errors_plainly
from kto_plugin.log import get_logger
from kto_plugin.training.reference_model import skip_unused_reference_model
from kto_plugin.training.training_args import (
    MIXIN_PATH,
    reference_cache_on,
    require_merged_fields,
    training_args_from_config,
)
from kto_plugin.versions import axolotl_seeds_adapter_init

LOG = get_logger(__name__)

TRAINER_CLS = "kto_plugin.trainer.KTOPluginTrainer"


def release_cpu_memory(cfg) -> None:
    """`kto_release_cpu_memory`: fix glibc's mmap threshold, before the data and the model are loaded."""
    from kto_plugin.training.cpu_memory import fix_mmap_threshold, release_cpu_memory_on

    if release_cpu_memory_on(cfg.get("kto_release_cpu_memory"), cuda_available()) and fix_mmap_threshold():
        LOG.info("KTO: freed blocks of 128 KiB or more go back to the system at once (glibc's mmap threshold fixed; "
                 "kto_release_cpu_memory: %s), so resident memory follows the live tensors",
                 str(cfg.get("kto_release_cpu_memory", "auto")).lower())


AXOLOTL_KTO_KEYS = ("kto_desirable_weight", "kto_undesirable_weight")  # Axolotl's own `kto_*` keys


def refuse_unknown_kto_keys(cfg) -> None:
    """A misspelt `kto_*` key is an error naming the closest known key (Axolotl's schema would drop it silently,
    and the run would train with the default)."""
    import difflib

    from kto_plugin.args import KTOPluginArgs

    known = set(KTOPluginArgs.model_fields) | set(AXOLOTL_KTO_KEYS)
    unknown = sorted(key for key in cfg if isinstance(key, str) and key.startswith("kto_") and key not in known)
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hints.append(f"`{key}`" + (f" (did you mean `{close[0]}`?)" if close else ""))
        raise ConfigError(f"unknown KTO key {', '.join(hints)}: the known ones are listed by `axolotl kto config-keys`")


def sample_packing_as_padding_free(cfg) -> None:
    """`sample_packing: true` on a KTO run becomes `kto_padding_free: true` (Axolotl's validator refuses packing for RL).

    KTO needs one log-prob per row, so rows are packed within a micro-batch, not across them
    (training/padding_free.py); `micro_batch_size` keeps its meaning.
    """
    if not cfg.get("sample_packing"):
        return
    if cfg.get("kto_padding_free") is False:
        raise ConfigError("`sample_packing: true` and `kto_padding_free: false` contradict each other: for KTO, packing "
                         "is the plugin's padding-free micro-batches. Remove one of the two keys.")
    cfg["sample_packing"] = False
    cfg.pop("eval_sample_packing", None)
    cfg["kto_padding_free"] = True
    LOG.info("KTO: `sample_packing: true` -> `kto_padding_free: true`: each micro-batch's rows packed into one sequence "
             "(Axolotl packs across rows, which a per-row KTO loss cannot use, and refuses it for RL)")


class KTOPlugin(BasePlugin):
    """KTO preference alignment for Axolotl: data formats and checks, the plugin's loss, beta schedules."""

    def get_input_args(self) -> str:
        return "kto_plugin.args.KTOPluginArgs"

    def register(self, cfg: dict):
        """Fill what a KTO run needs before Axolotl validates the raw config."""
        print_user_errors_plainly()  # a data or config problem ends `axolotl train` with its message, not a traceback
        refuse_unknown_kto_keys(cfg)
        # TRL's KTOTrainer reads columns the model signature does not name.
        if cfg.get("remove_unused_columns") is None:
            cfg["remove_unused_columns"] = False
        # `trainer_cls:` keeps the model argument on RL runs; a plugin's get_trainer_cls does not.
        if cfg.get("trainer_cls") is None:
            cfg["trainer_cls"] = TRAINER_CLS
        elif cfg["trainer_cls"] != TRAINER_CLS:
            LOG.warning(
                f"`trainer_cls: {cfg['trainer_cls']}` replaces the plugin's trainer: the plugin's loss, "
                "beta schedule and KL pairing are not used"
            )
        # Axolotl turns its Triton LoRA kernels on whenever they are unset, also with no GPU,
        # where `axolotl inference` then fails ("Torch not compiled with CUDA enabled").
        if not cuda_available():
            for key in ("lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel", "lora_embedding_kernel"):
                if cfg.get(key) is None:
                    cfg[key] = False
        release_cpu_memory(cfg)
        if cfg.get("deepspeed"):
            cfg["deepspeed"] = resolve_deepspeed(cfg["deepspeed"])
        skip_unused_reference_model(cfg)
        let_axolotl_ranks_run_on_cpu(cfg)
        for key in ("base_model", "tokenizer_config"):
            if is_plugin_uri(cfg.get(key)):
                if cfg[key] == WARM_MODEL_URI:
                    from kto_plugin.orchestration.warm_up import ensure_warm_model

                    ensure_warm_model()  # made on first use (a few minutes of `axolotl train`), then cached
                cfg[key] = resolve_model_uri(cfg[key])
        sample_packing_as_padding_free(cfg)
        if cfg.get("kto_lora_preset"):
            from kto_plugin.training.lora_presets import apply_lora_preset

            apply_lora_preset(cfg)
        # Axolotl's dataset schema drops keys it does not know, such as `field_query`:
        # keep each entry's `field_*` keys under `kto_dataset_fields` before validation.
        dataset_fields = {}
        for split_key in ("datasets", "test_datasets"):
            entries = [entry for entry in cfg.get(split_key) or [] if isinstance(entry, dict)]
            for entry in entries:
                if is_plugin_uri(entry.get("path")):
                    entry["path"] = resolve_dataset_uri(entry["path"])
            dataset_fields[split_key] = [
                {key: value for key, value in entry.items() if key.startswith("field_")}
                for entry in entries
            ]
        cfg["kto_dataset_fields"] = dataset_fields

    def get_training_args_mixin(self) -> str:
        return MIXIN_PATH

    def get_training_args(self, cfg):
        from axolotl.core.training_args import AxolotlKTOConfig

        require_merged_fields(AxolotlKTOConfig)
        # `kto_ref_cache: auto`: TRL's reference pass before training, which the plugin's trainer caches on disk
        return {
            "loss_type": cfg.kto_loss_type or "kto",
            "precompute_ref_log_probs": reference_cache_on(cfg),
            **training_args_from_config(cfg),
            **training_args_for_cpu_ranks(cfg),
        }

    def pre_model_load(self, cfg):
        # Axolotl 0.19 and 0.20 seed only data shuffling: without this the LoRA initialisation,
        # and so every number of a run, changes from run to run whatever `seed:` says.
        if cfg.seed is not None and not axolotl_seeds_adapter_init():
            from transformers import set_seed

            set_seed(cfg.seed)

    def post_trainer_create(self, cfg, trainer):
        from kto_plugin.training.class_weights import apply_class_weights

        args = trainer.args
        if args.world_size > 1:
            deepspeed_plugin = trainer.accelerator.state.deepspeed_plugin
            fsdp_plugin = getattr(trainer.accelerator.state, "fsdp_plugin", None)
            how = (f"DeepSpeed ZeRO-{deepspeed_plugin.zero_stage}" if deepspeed_plugin
                   else f"FSDP{getattr(fsdp_plugin, 'fsdp_version', '')}" if fsdp_plugin else "DDP")
            micro, accumulation = args.per_device_train_batch_size, args.gradient_accumulation_steps
            LOG.info(
                f"KTO: {args.world_size} processes, {how}; global batch {micro} x {accumulation} x "
                f"{args.world_size} = {micro * accumulation * args.world_size} examples, one z0 for all ranks"
            )

        apply_class_weights(cfg, trainer)
        if hasattr(trainer, "report_logps_path"):
            trainer.report_logps_path()

    def add_callbacks_post_trainer(self, cfg, trainer):
        from kto_plugin.training.beta_schedule import BetaSchedule, BetaScheduleCallback
        from kto_plugin.training.displacement import HeldOutDisplacementCallback
        from kto_plugin.training.metrics_log import MetricsFileCallback

        callbacks = [MetricsFileCallback(cfg.output_dir)]
        if hasattr(trainer, "displacement_guard"):  # the plugin's trainer: its eval split's accepted answers watched too
            callbacks.append(HeldOutDisplacementCallback(trainer))
        if hasattr(trainer, "set_beta"):
            schedule = BetaSchedule.from_config(cfg.kto_beta_schedule, cfg.rl_beta)
            callbacks.append(BetaScheduleCallback(trainer, schedule))
        return callbacks

    def post_train_unload(self, cfg):
        import os

        if cfg.kto_eval_post_train and int(os.environ.get("RANK", "0")) == 0:
            from kto_plugin.evaluation.harness import evaluate_run

            evaluate_run(cfg)

    def load_datasets(self, cfg, preprocess: bool = False):
        from kto_plugin.data.loading import load_kto_datasets

        # The first hook after Axolotl's normalize_config and before the model loader:
        # the place to undo its accelerator `device_map` for CPU ranks.
        if place_ranks_on_cpu(cfg):
            LOG.info("KTO: %d CPU ranks (gloo); the model is loaded on the CPU in each", cfg.world_size)
        return load_kto_datasets(cfg, preprocess=preprocess)
