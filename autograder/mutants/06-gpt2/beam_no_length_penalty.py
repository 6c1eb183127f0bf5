"""beam_search returns the summed log-probabilities without dividing by N ** length_penalty."""

_beam_search = beam_search


def beam_search(model, input_ids, num_beams, max_new_tokens, length_penalty=1.0):
    sequences, scores = _beam_search(model, input_ids, num_beams, max_new_tokens, length_penalty)
    return sequences, scores * max_new_tokens**length_penalty
