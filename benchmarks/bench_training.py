"""Section ``training``: samples/s of the recall step of every learned model.

``Trainer.recall_loss`` + backward + AdamW, batch 1024, plus SASS's pre-training step; the
models take turns in rounds and each keeps its best round. Reported as the ratio to ``mixed``.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.section import Section
from core.config import Config


def bench_training(config: Config, steps: int, rounds: int, seed: int = 0) -> Section:
    import torch

    from abtest.pipeline import load_data
    from models.towers import PerScenario
    from models.train import TrainConfig, Trainer, make_optimizer
    from models.zoo import LEARNED, ModelConfig

    sec = Section("training")
    data = load_data(config, progress=False)
    tcfg = TrainConfig()
    torch.set_num_threads(tcfg.threads)  # as Trainer.run
    ex = data.train
    rng = np.random.default_rng(seed)
    scen = data.requests.scenario[ex.request]
    by_scen = [np.flatnonzero(scen == s) for s in range(data.spec.n_scenarios)]

    def batch(pool: np.ndarray) -> np.ndarray:
        return rng.choice(pool, tcfg.batch_size, replace=pool.size < tcfg.batch_size)

    steppers = {}
    for name in (*LEARNED, "sass_pretrain"):
        trainer = Trainer(data, ModelConfig(name.removesuffix("_pretrain"), data.spec), tcfg, seed)
        trainer.progress = False
        model = trainer.model
        model.train()
        # `single` trains one mixed tower per scenario on that scenario's rows (Trainer.run):
        # its steps go round the scenarios, each on its own tower.
        jobs = (
            [(t, by_scen[s]) for s, t in enumerate(model.towers) if by_scen[s].size]
            if isinstance(model, PerScenario)
            else [(model, np.arange(len(ex)))]
        )
        opts = [make_optimizer(m, tcfg) for m, _ in jobs]

        def step(i: int, name=name, jobs=jobs, opts=opts, trainer=trainer) -> None:
            m, pool = jobs[i % len(jobs)]
            idx = batch(pool)
            if name == "sass_pretrain":
                pre = trainer.data.pretrain
                j = rng.choice(len(pre), tcfg.batch_size, replace=False)
                loss = trainer.pretrain_loss(m, pre.request[j], pre.item[j])
            else:
                loss = trainer.recall_loss(m, ex.request[idx], ex.item[idx])
            opt = opts[i % len(jobs)]
            opt.zero_grad()
            loss.backward()
            opt.step()

        for i in range(2):  # warm-up
            step(i)
        steppers[name] = step
    # Models take turns, a few steps each per round, and each keeps its best round: load
    # from other users of the machine then hits every model alike.
    rates = dict.fromkeys(steppers, 0.0)
    for _ in range(rounds):
        for name, step in steppers.items():
            t0 = time.perf_counter()
            for i in range(steps):
                step(i)
            rates[name] = max(rates[name], steps * tcfg.batch_size / (time.perf_counter() - t0))
    sec.figures = {
        "batch_size": tcfg.batch_size,
        "steps_per_round": steps,
        "rounds": rounds,
        "torch_threads": tcfg.threads,
        "train_examples": len(ex),
        "samples_per_s": {k: round(v) for k, v in rates.items()},
        "note": "single: one mixed tower per scenario, steps round-robin over scenarios; "
        "sass_pretrain: the contrastive pre-training step (Trainer.pretrain_loss)",
    }
    for name, rate in rates.items():
        sec.target(f"samples/s {name} / mixed", round(rate / rates["mixed"], 3), "", None)
    return sec
