"""train_classifier computes the loss but never updates the model."""

REPLACE = [
    (
        "        loss = F.cross_entropy(model(input_ids[index]), labels[index])\n        optimizer.zero_grad()\n        torch.autograd.backward(loss)\n        optimizer.step()\n",
        "        loss = F.cross_entropy(model(input_ids[index]), labels[index])\n",
    )
]
