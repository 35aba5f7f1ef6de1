"""What `make train` runs: the structured synthetic generator, a 3-layer encoder, about 4 minutes on 2 CPU cores.

Every other config imports this one and changes a few fields. Override any field on the command line:
`dnajax train --config configs/default.py --config.model.num_layers=2 --config.train.steps=100`.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()

  c.data = d = ml_collections.ConfigDict()
  d.sources = ("synthetic:structured",)  # files, prepared corpus directories, or synthetic:iid / synthetic:structured
  d.format = ""  # fasta | genbank; empty = from the extension
  d.synthetic_bases = 4_000_000  # size of a synthetic corpus (made once, in the workdir)
  d.synthetic_record_len = 20_000
  d.seq_len = 128
  d.mask_rate = 0.15
  d.mask_rate_max = 0.0  # > mask_rate: each training window draws its rate uniformly from [mask_rate, mask_rate_max]
  # Sequence-length curriculum: "128:0.8" trains on 128-base windows for the first 80% of the steps, then on
  # seq_len; "128:0.5,256:0.8" has three stages. Empty: seq_len throughout. One compile per length.
  d.curriculum = ""
  d.val_fraction = 0.1
  d.split = "auto"  # auto | records | blocks
  d.n_run = 10  # records are split at runs of at least this many N
  d.min_len = 64  # segments shorter than this are dropped
  d.max_n_fraction = 0.5
  d.cds = False  # inputs are coding sequences (CDS FASTA, or GenBank CDS features): codon-aligned windows
  d.reverse_complement = False  # augmentation: each training window reverse-complemented with p=0.5
  # Mixture: one sampling weight per source of the corpus (an input file, directory or glob; `dnajax prepare`
  # lists them), e.g. "0.5,0.5". Empty: a corpus's own `prepare --weights`, else in proportion to length.
  d.weights = ()
  # Loss weight of soft-masked (lowercase: repeat) bases in training, in [0, 1] (GPN uses 0.1); evaluation still
  # reports repeat and non-repeat strata unweighted.
  d.softmask_weight = 1.0

  c.model = m = ml_collections.ConfigDict()
  m.d_model = 64
  m.num_heads = 4
  m.num_layers = 3
  m.d_ff = 256
  m.dropout = 0.0
  m.max_len = 512
  m.pos_encoding = "rope"  # rope | learned
  m.mlp = "gelu"  # gelu | swiglu
  m.tie_embeddings = False
  m.dtype = "float32"  # float32 | bfloat16
  m.remat = "none"  # none | full | dots: trade compute for activation memory
  m.attention = "auto"  # auto (per backend, length) | xla | cudnn | einsum | flash | fused: dnajax/model/attention.py

  c.opt = o = ml_collections.ConfigDict()
  o.learning_rate = 3e-3
  o.warmup_steps = 100
  o.end_lr_fraction = 0.05
  o.weight_decay = 0.01
  o.clip_norm = 1.0
  o.b1 = 0.9
  o.b2 = 0.98
  o.skip_nonfinite = False  # True: an update with non-finite loss/gradients is skipped (logged) instead of stopping

  c.train = t = ml_collections.ConfigDict()
  t.steps = 800
  t.global_batch = 32
  # Micro-batches per step (global_batch must divide by it), or "auto": the smallest count whose compiled step fits
  # the device's memory, chosen before training, logged and written to config.json. 1 in the CPU configs; the
  # accelerator configs (base.py, large.py) use auto. Every run first checks its compiled step's memory per device
  # against the device's limit (a step is planned to use at most 75% of it) and refuses, in one line naming the
  # count that fits, a step that does not.
  t.grad_accum = 1
  # The memory one device holds, GiB, for that check; 0: the device's own limit (memory_stats bytes_limit on GPU and
  # TPU, the host's available memory on CPU). Set it to share a device, or to plan for another one.
  t.memory_limit_gib = 0.0
  t.seed = 0
  t.log_every = 20
  t.eval_every = 400

  c.eval = e = ml_collections.ConfigDict()
  e.mask_rate = 0.15
  e.seed = 1234
  e.max_windows = 1024
  e.batch = 128

  # Parallelism: data x fsdp x tensor devices within a slice/node group (-1: the remaining devices), times dcn_*
  # across slices/nodes. The rules map the model's logical axes to mesh axes ("a,b": both; "": replicated).
  c.mesh = ms = ml_collections.ConfigDict()
  ms.data = -1
  ms.fsdp = 1
  ms.tensor = 1
  ms.dcn_data = 1
  ms.dcn_fsdp = 1
  ms.dcn_tensor = 1
  ms.rules = ml_collections.ConfigDict({"batch": "data,fsdp", "embed": "fsdp", "mlp": "tensor", "heads": "tensor",
                                        "kv": "", "vocab": "", "length": ""})

  c.ckpt = k = ml_collections.ConfigDict()
  k.every = 400
  k.keep = 3
  k.async_save = True
  k.dir = ""  # empty: WORKDIR/checkpoints; may be a gs:// path (orbax writes it directly)

  # Fine-tuning on labelled sequences (`dnajax finetune`; ignored by `dnajax train`). The defaults are the
  # settings measured best on GUE prom_core_tata dev (README, "Fine-tuning"): see benchmarks/finetune_bench.py.
  c.finetune = f = ml_collections.ConfigDict()
  # head: a linear head on a frozen encoder | full: everything | lora: adapters + the head (these three by AdamW) |
  # trees: gradient-boosted trees (scikit-learn) on the frozen encoder's states, plus hand features of coding
  # sequences | auto: lora for classification (best on GUE prom_core_tata), trees for regression (best on the mRFP
  # expression library: val Spearman 0.833 vs 0.441 for lora; README, under `dnajax features`).
  f.method = "auto"
  f.learning_rate = 1e-3  # peak; linear warm-up, cosine decay to 5% (opt.end_lr_fraction), AdamW as pretraining
  f.warmup_fraction = 0.1  # of all fine-tuning steps
  f.weight_decay = 0.01
  f.epochs = 10  # passes over the training rows (the last batch of an epoch may be short)
  f.batch = 32  # sequences per step
  f.head_dropout = 0.1  # on the pooled vector, before the head
  f.dropout = 0.1  # inside the encoder while fine-tuning (model.dropout of the fine-tuned model)
  f.lora_rank = 8  # method lora: adapter rank on every attention and MLP projection
  f.lora_alpha = 16.0  # method lora: adapter output scaled by lora_alpha / lora_rank
  f.window = 0  # window length; 0: the base run's data.seq_len, shortened to the longest training sequence
  # Pooling before the head: mean (over each sequence's bases; any length) | positions (each position's hidden
  # state side by side: for aligned, fixed-length inputs; sequences at most the training length, in one window) |
  # auto (positions when every training sequence has the same length and fits one window, else mean).
  f.pool = "auto"
  f.eval_every = 0  # steps between validations (and checkpoints); 0: once per epoch
  f.patience = 3  # validations without a better selection metric before stopping; 0: never stop early
  f.select = "auto"  # the validation metric that picks the best checkpoint: auto (mcc; regression: spearman),
  # or accuracy, macro_f1, auroc, pearson, r2, loss (lower is better)
  f.log_every = 20
  # The pretraining step's safeguards (train.grad_accum, opt.skip_nonfinite) for fine-tuning: micro-batches per step
  # (the same update in 1/grad_accum of the activation memory), and keeping the old state on a non-finite update.
  f.grad_accum = 1
  f.skip_nonfinite = False
  # method trees: the encoder layer read (-1: final normalised output, 0: token embedding, k: block k); principal
  # components kept per position (position-wise pooling); expression features of coding sequences next to the states
  # (auto: when every training sequence is a CDS | none | expression; `dnajax features` lists them) with their host;
  # boosting iterations at most (the validation rows choose how many) and the boosting learning rate.
  f.layer = -1
  f.components = 3
  f.features = "auto"
  f.organism = "e_coli"
  f.tree_iterations = 400
  f.tree_learning_rate = 0.05

  c.log = ml_collections.ConfigDict()
  c.log.tensorboard = True
  return c
