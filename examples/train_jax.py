"""Tune a small Flax MLP trained with Optax, logging JAX arrays without blocking the step.

``trial.log`` takes the ``jax.Array`` the jitted step returns as it is: no
``float(loss)``, no ``block_until_ready``, so JAX's asynchronous dispatch keeps
the device busy. tunebook's writer thread fetches the logged values with one
``jax.device_get`` per flush (at most once a second).

The data are synthetic (a fixed random regression problem, no download).

    python examples/train_jax.py        # 4 trials on JAX's default backend, ./tunebook-jax.db
"""

from __future__ import annotations

import tunebook as tb

space = tb.SearchSpace(
    nuisance={"learning_rate": tb.Float(1e-3, 1e-1, scale="log")},
    fixed={"hidden_units": 32, "batch_size": 32, "eval_every": 10},
)


def train(trial: tb.Trial) -> None:
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import optax

    p = trial.params
    data_key, init_key = jax.random.split(jax.random.PRNGKey(trial.seed))
    x = jax.random.normal(jax.random.PRNGKey(0), (512, 8))  # the same problem for every trial
    y = jnp.sin(x @ jnp.linspace(-1.0, 1.0, 8))[:, None]
    x_val, y_val = x[448:], y[448:]

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, inputs: jax.Array) -> jax.Array:
            return nn.Dense(1)(nn.relu(nn.Dense(p["hidden_units"])(inputs)))

    model = MLP()
    params = model.init(init_key, x[:1])
    optimizer = optax.adam(p["learning_rate"])
    opt_state = optimizer.init(params)

    def loss_fn(params: object, xb: jax.Array, yb: jax.Array) -> jax.Array:
        return jnp.mean((model.apply(params, xb) - yb) ** 2)

    @jax.jit
    def step_fn(params: object, opt_state: object, key: jax.Array) -> tuple[object, object, jax.Array, jax.Array]:
        idx = jax.random.randint(key, (p["batch_size"],), 0, 448)
        loss, grads = jax.value_and_grad(loss_fn)(params, x[idx], y[idx])
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, optax.tree.norm(grads)

    evaluate = jax.jit(loss_fn)
    for step in range(1, trial.max_train_steps + 1):
        data_key, key = jax.random.split(data_key)
        params, opt_state, loss, grad_norm = step_fn(params, opt_state, key)
        trial.log(step, **{"train/loss": loss, "grad_norm": grad_norm})  # jax.Arrays: no wait here
        if step % p["eval_every"] == 0 or step == trial.max_train_steps:
            trial.log(step, **{"val/error": evaluate(params, x_val, y_val)})


if __name__ == "__main__":  # worker processes import this file: keep the run behind the guard
    study = tb.create_study(
        "jax-mlp",
        space=space,
        objective=("val/error", "min"),
        trials=4,
        max_train_steps=200,
        storage="sqlite:///tunebook-jax.db",
        infeasible_if={"train/loss": {"above": 1e3}},
    )
    tb.run(study, train, workers=1)
    print(study.best_trial())
