"""train_forecaster computes the loss but never updates the model."""

REPLACE = [
    (
        "        loss = F.mse_loss(model(x[index]), y[index])\n        optimizer.zero_grad()\n        torch.autograd.backward(loss)\n        optimizer.step()\n",
        "        loss = F.mse_loss(model(x[index]), y[index])\n",
    )
]
