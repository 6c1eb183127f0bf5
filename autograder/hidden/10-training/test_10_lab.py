"""Hidden tests for week 10, the lab: what was handed in (handout section 10).

How the week is graded: conftest.py.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
import struct
import zipfile

import torch
import torch.nn.functional as F

from autograder import (
    CheckFailed,
    assert_close,
    expect_tensor,
)
from autograder.testing import (
    fails,
    gpt_state,
    number,
)

# -- the lab: what was handed in -------------------------------------------------------------------------------
#
# Points come from evidence the grader produces itself, never from what the student's code says about its
# files: the checkpoint is read here as plain data (``torch.load(weights_only=True)`` of a size-checked,
# uncompressed archive) into the reference's own GPT class, and its loss on held-out passages is measured
# here; the log must agree with that measurement; the plot is decoded; and a short seeded training run of
# the student's own ``configure_optimizer`` and ``train_step`` must follow the reference's. The report is
# read by a person (``manual:`` in course.yml): ``test_lab_report`` only checks its form, for feedback.

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FINAL_VAL_LOSS = 2.2  # nats per character on tinyshakespeare's validation split; nanoGPT's CPU baseline reaches ~1.88
HELD_OUT_LOSS = 2.5  # on the passages below, from the validation split (the last 10 % of the corpus)
# The log's final validation loss (240 random windows of the split) and the grader's loss of the handed-in
# checkpoint on these passages agree to within 0.03 for lab runs ending at 1.9, 2.5 and 2.5 (context 64 and 128).
LOG_TOLERANCE = 0.1
SAMPLE_PROMPT = "ROMEO:\n"
MAX_CHECKPOINT_PICKLE = 8 * 2**20  # the non-tensor part of checkpoint.pt (the lab's is a few KB)
MAX_PARAMETERS = 8 * 2**20  # the model a checkpoint may describe (the lab's reference recipe has 0.4 M)
CONFIG_KEYS = {"vocab_size", "max_len", "d_model", "n_heads", "n_layers", "d_ff", "dropout", "eps"}
CONFIG_INTS = {"vocab_size": 4096, "max_len": 4096, "d_model": 4096, "n_heads": 64, "n_layers": 64, "d_ff": 16384}
EVAL_CONTEXT = 256  # longest window the held-out loss is measured on
# Four passages of the validation split (offsets 12000, 33000, 61000 and 88000 of it, from a blank line).
HELD_OUT_PASSAGES = (
    """TRANIO:
Is this your speeding? nay, then, good night our part!

PETRUCHIO:
Be patient, gentlemen; I choose her for myself:
If she and I be pleased, what's that to you?
'Tis bargain'd 'twixt us twain, being alone,
That she shall still be curst in company.
I tell you, 'tis incredible to believe
How much she loves me: O, the kindest Kate!
She hung about my neck; and kiss on kiss
She vied so fast, protesting oath on oath,
That in a twink she won me to her love.
O, you are novices! 'tis a world to see,
How tame, when men and women are alone,
A meacock wretch can make the curstest shrew.
Give me thy hand, Kate: I will unto Venice,
To buy apparel 'gainst the wedding-day.
Provide the feast, father, and bid the guests;
I will be sure my Katharina shall be fine.

BAPTISTA:
I know not what to say: but give me your hands;
God send you joy, Petruchio! 'tis a match.

GREMIO:
Amen, say we: we will be witnesses.

PETRUCHIO:
Father, and wife, and gentlemen, adieu;
I will to Venice; Sunday comes apace:
We will have rings and things and fine array;
And kiss me, Kate, we will be married o'Sunday.

GREMIO:
Was ever match clapp'd up so suddenly?

BAPTISTA:
Faith, gentlemen, now I play a merchant's part,
And venture madly on a desperate mart.

TRANIO:
'Twas a commodity lay fretting by you:
'Twill bring you gain, or perish on the seas.

BAPTISTA:
The gain I seek is, quiet in the match.

GREMIO:
No doubt but he hath got a quiet catch.
But now, Baptists, to your younger daughter:
""",
    """GRUMIO:
A cold world, Curtis, in every office but thine; and
therefore fire: do thy duty, and have thy duty; for
my master and mistress are almost frozen to death.

CURTIS:
There's fire ready; and therefore, good Grumio, the news.

GRUMIO:
Why, 'Jack, boy! ho! boy!' and as much news as
will thaw.

CURTIS:
Come, you are so full of cony-catching!

GRUMIO:
Why, therefore fire; for I have caught extreme cold.
Where's the cook? is supper ready, the house
trimmed, rushes strewed, cobwebs swept; the
serving-men in their new fustian, their white
stockings, and every officer his wedding-garment on?
Be the jacks fair within, the jills fair without,
the carpets laid, and every thing in order?

CURTIS:
All ready; and therefore, I pray thee, news.

GRUMIO:
First, know, my horse is tired; my master and
mistress fallen out.

CURTIS:
How?

GRUMIO:
Out of their saddles into the dirt; and thereby
hangs a tale.

CURTIS:
Let's ha't, good Grumio.

GRUMIO:
Lend thine ear.

CURTIS:
Here.

GRUMIO:
There.

CURTIS:
This is to feel a tale, not to hear a tale.

GRUMIO:
And therefore 'tis called a sensible tale: and this
cuff was but to knock at your ear, and beseech
listening. Now I begin: Imprimis, we came down a
foul hill, my master riding behind my mistress,--

CURTIS:
Both of one horse?

GRUMIO:
What's that to thee?

CURTIS:
Why, a horse.

GRUMIO:
Tell thou the tale: but hadst thou not crossed me,
thou shouldst have heard how her horse fell and she
under her horse; thou shouldst have heard in how
""",
    """VINCENTIO:
But is it true? or else is it your pleasure,
Like pleasant travellers, to break a jest
Upon the company you overtake?

HORTENSIO:
I do assure thee, father, so it is.

PETRUCHIO:
Come, go along, and see the truth hereof;
For our first merriment hath made thee jealous.

HORTENSIO:
Well, Petruchio, this has put me in heart.
Have to my widow! and if she be froward,
Then hast thou taught Hortensio to be untoward.

BIONDELLO:
Softly and swiftly, sir; for the priest is ready.

LUCENTIO:
I fly, Biondello: but they may chance to need thee
at home; therefore leave us.

BIONDELLO:
Nay, faith, I'll see the church o' your back; and
then come back to my master's as soon as I can.

GREMIO:
I marvel Cambio comes not all this while.

PETRUCHIO:
Sir, here's the door, this is Lucentio's house:
My father's bears more toward the market-place;
Thither must I, and here I leave you, sir.

VINCENTIO:
You shall not choose but drink before you go:
I think I shall command your welcome here,
And, by all likelihood, some cheer is toward.

GREMIO:
They're busy within; you were best knock louder.

Pedant:
What's he that knocks as he would beat down the gate?

VINCENTIO:
Is Signior Lucentio within, sir?

Pedant:
He's within, sir, but not to be spoken withal.

VINCENTIO:
What if a man bring him a hundred pound or two, to
make merry withal?

Pedant:
Keep your hundred pounds to yourself: he shall
need none, so long as I live.

PETRUCHIO:
Nay, I told you your son was well beloved in Padua.
""",
    """ARIEL:
All hail, great master! grave sir, hail! I come
To answer thy best pleasure; be't to fly,
To swim, to dive into the fire, to ride
On the curl'd clouds, to thy strong bidding task
Ariel and all his quality.

PROSPERO:
Hast thou, spirit,
Perform'd to point the tempest that I bade thee?

ARIEL:
To every article.
I boarded the king's ship; now on the beak,
Now in the waist, the deck, in every cabin,
I flamed amazement: sometime I'ld divide,
And burn in many places; on the topmast,
The yards and bowsprit, would I flame distinctly,
Then meet and join. Jove's lightnings, the precursors
O' the dreadful thunder-claps, more momentary
And sight-outrunning were not; the fire and cracks
Of sulphurous roaring the most mighty Neptune
Seem to besiege and make his bold waves tremble,
Yea, his dread trident shake.

PROSPERO:
My brave spirit!
Who was so firm, so constant, that this coil
Would not infect his reason?

ARIEL:
Not a soul
But felt a fever of the mad and play'd
Some tricks of desperation. All but mariners
Plunged in the foaming brine and quit the vessel,
Then all afire with me: the king's son, Ferdinand,
With hair up-staring,--then like reeds, not hair,--
Was the first man that leap'd; cried, 'Hell is empty
And all the devils are here.'

PROSPERO:
Why that's my spirit!
But was not this nigh shore?

ARIEL:
Close by, my master.

PROSPERO:
But are they, Ariel, safe?

ARIEL:
Not a hair perish'd;
On their sustaining garments not a blemish,
""",
)
HELD_OUT = "\n".join(HELD_OUT_PASSAGES)


def handed_in_text(handed_in, name: str, what: str) -> str:
    data = handed_in(name)
    if data is None:
        fails(f"{name} is not in your submission: hand it in beside training.py ({what})")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        fails(f"{name} is not UTF-8 text")
        raise


def test_lab_report(handed_in):
    """Graded by hand (``manual:`` in course.yml): this checks only the form, so the student hears of a gap early."""
    report = handed_in_text(handed_in, "report.md", "your write-up, from the template the lab writes")
    if len(report.strip()) < 300:
        fails(
            f"report.md has {len(report.strip())} characters; write at least a few paragraphs (300 characters or more)"
        )
    if "TODO" in report:
        fails("report.md still contains TODO: replace the template's TODO paragraphs with your own text")
    sections = re.split(r"^#+ ", report, flags=re.MULTILINE)
    changed = [s for s in sections if s.lower().startswith("what i changed")]
    if not changed:
        fails("report.md has no '## What I changed and why' section (keep the template's headings)")
    body = changed[0].split("\n", 1)[-1].strip()
    if len(body) < 150:
        fails(
            f"report.md: the 'What I changed and why' section has {len(body)} characters; say what you changed, why, "
            "and what it did to the validation loss (150 characters or more)"
        )


def test_lab_loss_curve(handed_in):
    """The plot decodes (every row of it, not just the header) and looks like a plot: a background and some ink."""
    from PIL import Image  # matplotlib's own PNG reader

    data = handed_in("loss_curve.png")
    if data is None:
        fails("loss_curve.png is not in your submission: hand in the plot the lab writes")
    if not data.startswith(PNG_SIGNATURE) or len(data) < 33 or data[12:16] != b"IHDR":
        fails("loss_curve.png is not a PNG file")
    width, height = struct.unpack(">II", data[16:24])
    if width < 200 or height < 150:
        fails(f"loss_curve.png is {width} x {height} pixels; the plot should be at least 200 x 150")
    if width > 8000 or height > 8000:
        fails(f"loss_curve.png is {width} x {height} pixels; the plot the lab writes is about 770 x 460")
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            image.load()  # decodes the pixel data: a header with nothing (or garbage) after it fails here
            pixels = image.convert("RGB")
    except Exception as exc:  # PIL raises OSError, ValueError, SyntaxError, DecompressionBombError ...
        fails(f"loss_curve.png does not decode as a PNG image ({type(exc).__name__}: {str(exc)[:120]})")
        raise
    colours = pixels.getcolors(maxcolors=1 << 16)
    total = width * height
    if colours is None:
        fails("loss_curve.png has more than 65536 colours: hand in the plot the lab writes, not a photograph")
        raise AssertionError
    background = max(count for count, _ in colours)
    if len(colours) < 2 or background > total * 0.998:
        fails("loss_curve.png is a blank image: hand in the plot the lab writes")
    if background < total * 0.3:
        fails("loss_curve.png has no background colour: it does not look like a plot of the loss curves")


def read_train_log(handed_in) -> list[dict[str, float]]:
    text = handed_in_text(handed_in, "train_log.csv", "the log the lab writes: step,train_loss,val_loss")
    reader = csv.DictReader(io.StringIO(text))
    columns = {"step", "train_loss", "val_loss"}
    if reader.fieldnames is None or not columns <= set(reader.fieldnames):
        fails(f"train_log.csv has the columns {reader.fieldnames}; expected step,train_loss,val_loss")
    rows = []
    for number_, row in enumerate(reader, start=2):
        try:
            rows.append({key: float(row[key]) for key in columns})
        except (TypeError, ValueError):
            fails(f"train_log.csv line {number_}: {row!r:.100} is not three numbers")
    return rows


class HandedInModel:
    """The handed-in checkpoint in the grader's own ``GPT``, with the loss the grader measured."""

    def __init__(self, model: torch.nn.Module, step: int, config: dict, vocab: str, loss: float) -> None:
        self.model, self.step, self.config, self.vocab, self.loss = model, step, config, vocab, loss


_CHECKPOINTS: dict[str, HandedInModel | str] = {}  # sha256 of the last file read -> what it holds, or why refused


def checked_archive(data: bytes) -> None:
    """Refuse what ``torch.save`` does not write before unpickling: other formats, compressed records, huge pickles."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            records = archive.infolist()
    except zipfile.BadZipFile:
        fails("checkpoint.pt is not a torch.save file (a zip archive): save it with save_checkpoint, torch.save")
    if any(info.compress_type != zipfile.ZIP_STORED for info in records):
        fails("checkpoint.pt has compressed records; torch.save writes them uncompressed: save it with torch.save")
    if sum(info.file_size for info in records) > len(data):
        fails("checkpoint.pt is not a plain torch.save file (its records claim more bytes than it holds)")
    if sum(info.file_size for info in records if info.filename.endswith(".pkl")) > MAX_CHECKPOINT_PICKLE:
        fails("checkpoint.pt holds more than 8 MB of non-tensor data; save the dict save_checkpoint describes")


def checked_config(config) -> dict:
    """``GPT``'s keyword arguments, each of a sane type and size."""
    if not isinstance(config, dict) or not all(isinstance(key, str) for key in config):
        fails(f"checkpoint.pt's 'config' is {type(config).__name__}, expected a dict of GPT's keyword arguments")
    unknown = sorted(set(config) - CONFIG_KEYS)
    if unknown:
        fails(f"checkpoint.pt's 'config' has keys GPT does not take: {', '.join(unknown)[:120]}")
    for key, most in CONFIG_INTS.items():
        value = config.get(key)
        if value is None and key == "d_ff":
            continue
        if type(value) is not int or not 1 <= value <= most:
            fails(f"checkpoint.pt's config[{key!r}] is {value!r:.40}; expected a whole number from 1 to {most}")
    for key, low, high in (("dropout", 0.0, 1.0), ("eps", 1e-12, 1.0)):
        value = config.get(key, low if key == "dropout" else 1e-5)
        if type(value) not in (int, float) or not low <= value < high:
            fails(f"checkpoint.pt's config[{key!r}] is {value!r:.40}; expected a number in [{low:g}, {high:g})")
    if config["d_model"] % config["n_heads"]:
        fails("checkpoint.pt's config: d_model is not a multiple of n_heads")
    if config["max_len"] < 16:
        fails(f"checkpoint.pt's config: max_len is {config['max_len']}; the lab's context is 64 characters")
    return dict(config)


def held_out_loss(model: torch.nn.Module, vocab: str, context: int) -> float:
    """Mean next-character loss on the held-out passages, in windows of ``context`` characters."""
    lookup = {char: i for i, char in enumerate(vocab)}
    ids = torch.tensor([lookup[char] for char in HELD_OUT], dtype=torch.long)
    usable = len(ids) // context * context
    windows = ids[:usable].view(-1, context)
    total = 0.0
    with torch.no_grad():
        for chunk in windows.split(4):  # a few windows at a time: bounded memory for the attention scores
            logits = model(chunk)
            total += float(
                F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), chunk[:, 1:].flatten(), reduction="sum")
            )
    return total / windows[:, 1:].numel()


def load_handed_in_checkpoint(data: bytes, reference) -> HandedInModel:
    """checkpoint.pt's weights in ``reference.GPT``: read here as plain tensors, never through the student's code."""
    checked_archive(data)
    try:
        state = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as exc:  # weights_only refuses anything but tensors, numbers, strings and containers
        fails(
            f"checkpoint.pt cannot be read with torch.load(weights_only=True) ({type(exc).__name__}: "
            f"{str(exc)[:160]}); save plain tensors, numbers, strings, lists and dicts only"
        )
    if not isinstance(state, dict):
        fails(f"checkpoint.pt holds {type(state).__name__}, expected the dict save_checkpoint writes")
    weights, step, vocab = state.get("model"), state.get("step"), state.get("vocab")
    config = checked_config(state.get("config"))
    if type(step) is not int or step < 0:
        fails(f"checkpoint.pt's 'step' is {step!r:.40}, expected the number of steps trained (an int)")
    if not isinstance(vocab, str) or len(vocab) != config["vocab_size"] or len(set(vocab)) != len(vocab):
        fails("checkpoint.pt's 'vocab' is not a string of vocab_size different characters (in id order)")
    missing = sorted(set(HELD_OUT) - set(vocab))
    if missing:
        fails(f"checkpoint.pt's vocabulary lacks {''.join(missing)!r}: train on tinyshakespeare.txt")
    if not isinstance(weights, dict) or not all(isinstance(value, torch.Tensor) for value in weights.values()):
        fails("checkpoint.pt's 'model' is not a state dict (parameter names -> tensors)")
    try:
        with torch.device("meta"):  # shapes without memory: a config describing a huge model costs nothing
            shapes = {name: tuple(value.shape) for name, value in reference.GPT(**config).state_dict().items()}
    except Exception as exc:
        fails(f"GPT(**checkpoint.pt's config) cannot be built ({type(exc).__name__}: {str(exc)[:160]})")
        raise
    if sum(math.prod(shape) for shape in shapes.values()) > MAX_PARAMETERS:
        fails(f"checkpoint.pt's config describes a model of more than {MAX_PARAMETERS:,} parameters")
    if set(weights) != set(shapes):
        extra, absent = sorted(set(weights) - set(shapes)), sorted(set(shapes) - set(weights))
        fails(
            f"checkpoint.pt's state dict does not fit GPT(**config): unexpected {', '.join(extra[:4]) or 'none'}; "
            f"missing {', '.join(absent[:4]) or 'none'}"
        )
    for name, value in weights.items():
        if (
            type(value) not in (torch.Tensor, torch.nn.Parameter)
            or value.layout != torch.strided
            or value.is_quantized
            or not value.is_floating_point()
            or tuple(value.shape) != shapes[name]
        ):
            fails(f"checkpoint.pt's {name!r} is not a floating-point tensor of shape {shapes[name]}")
    try:
        model = reference.GPT(**config)
        model.load_state_dict(weights, strict=True)
    except Exception as exc:
        fails(f"checkpoint.pt's weights do not load into GPT(**config) ({type(exc).__name__}: {str(exc)[:160]})")
        raise
    model.eval()
    loss = held_out_loss(model, vocab, min(config["max_len"], EVAL_CONTEXT))
    return HandedInModel(model, step, config, vocab, loss)


def handed_in_model(handed_in, reference) -> HandedInModel:
    """The handed-in checkpoint, read once per file (the log's test and the checkpoint's both need it)."""
    data = handed_in("checkpoint.pt")
    if data is None:
        fails("checkpoint.pt is not in your submission: hand in the checkpoint the lab writes")
    key = hashlib.sha256(data).hexdigest()
    if key not in _CHECKPOINTS:
        _CHECKPOINTS.clear()  # one submission's at a time
        try:
            _CHECKPOINTS[key] = load_handed_in_checkpoint(data, reference)
        except CheckFailed as exc:
            _CHECKPOINTS[key] = str(exc)
    found = _CHECKPOINTS[key]
    if isinstance(found, str):
        fails(found)
        raise AssertionError
    return found


def test_lab_train_log(handed_in, reference):
    rows = read_train_log(handed_in)
    if len(rows) < 3:
        fails(
            f"train_log.csv has {len(rows)} rows; log the validation loss at least three times (the lab logs every eval_interval steps)"
        )
    steps = [row["step"] for row in rows]
    if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        fails("train_log.csv: the steps do not increase from row to row")
    val = [row["val_loss"] for row in rows]
    if not all(math.isfinite(v) for v in val):
        fails("train_log.csv: some validation losses are not finite")
    if not val[-1] < val[0] - 0.5:
        fails(
            f"train_log.csv: the validation loss goes from {val[0]:.3f} to {val[-1]:.3f}; it should fall by more than 0.5 overall"
        )
    if not val[-1] < FINAL_VAL_LOSS:
        fails(
            f"train_log.csv: the final validation loss is {val[-1]:.3f} nats per character; train until it is below "
            f"{FINAL_VAL_LOSS} (nanoGPT's CPU baseline reaches about 1.88)"
        )
    # The log is the record of the run whose checkpoint was handed in: the same last step, the same loss.
    try:
        handed = handed_in_model(handed_in, reference)
    except CheckFailed as exc:
        fails(f"train_log.csv is checked against your checkpoint.pt, which the grader cannot use: {exc}")
        raise
    if steps[-1] != handed.step:
        fails(
            f"train_log.csv ends at step {steps[-1]:g} but checkpoint.pt was saved at step {handed.step}: hand in the "
            "log and the checkpoint of the same run (the lab writes both at every evaluation)"
        )
    if abs(val[-1] - handed.loss) > LOG_TOLERANCE:
        fails(
            f"train_log.csv ends with a validation loss of {val[-1]:.3f}, but the model in your checkpoint.pt has "
            f"{handed.loss:.3f} on passages of the validation split (the grader's measurement; a lab run's two agree "
            f"within {LOG_TOLERANCE}): hand in the log and the checkpoint of the same run"
        )


def test_lab_checkpoint_samples(handed_in, reference):
    """The checkpoint's weights, in the grader's GPT: a trained model's loss on held-out text, and a sample."""
    handed = handed_in_model(handed_in, reference)
    if not handed.loss < HELD_OUT_LOSS:
        fails(
            f"the model in your checkpoint.pt has a loss of {handed.loss:.3f} nats per character on passages of the "
            f"validation split; a trained model is below {HELD_OUT_LOSS}. Hand in the checkpoint of your final run"
        )
    text = reference.generate_text(handed.model, handed.vocab, SAMPLE_PROMPT, 40, 0.8, 3)
    if len(text) != len(SAMPLE_PROMPT) + 40 or not set(text) <= set(handed.vocab) | set(SAMPLE_PROMPT):
        fails(f"a sample from the model in your checkpoint.pt went wrong: {text!r:.120}")


# A short seeded run of the student's own training code: 20 steps of configure_optimizer and train_step
# (clipping at 1) on a tiny float64 GPT, from the same weights and batches as the reference's. float64: the
# two runs agree to ~1e-12 whatever the summation order, so the losses are compared at rtol 1e-6.
RUN_STEPS = 20
RUN_TEXT = HELD_OUT_PASSAGES[0]
RUN_VOCAB = "".join(sorted(set(RUN_TEXT)))
RUN_CONFIG = {
    "vocab_size": len(RUN_VOCAB),
    "max_len": 24,
    "d_model": 16,
    "n_heads": 2,
    "n_layers": 1,
    "d_ff": 32,
    "dropout": 0.0,
    "eps": 1e-5,
}


def run_batches(seed: int, batch: int = 8) -> list[torch.Tensor]:
    ids = torch.tensor([RUN_VOCAB.index(char) for char in RUN_TEXT], dtype=torch.long)
    length = RUN_CONFIG["max_len"]
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(RUN_STEPS):
        starts = torch.randint(len(ids) - length + 1, (batch,), generator=generator)
        batches.append(torch.stack([ids[s : s + length] for s in starts.tolist()]))
    return batches


def test_lab_training_run(student, reference):
    state = gpt_state(reference, seed=300, std=0.02, config=RUN_CONFIG)
    ref = reference.GPT(**RUN_CONFIG).double()
    ref.load_state_dict(state)
    ref.train()
    mine = student.GPT(**RUN_CONFIG)
    mine.double()
    mine.load_state_dict(state)
    mine.train()
    ref_optimizer = reference.configure_optimizer(ref, 1e-2, 0.1, (0.9, 0.99))
    my_optimizer = student.configure_optimizer(mine, 1e-2, 0.1, (0.9, 0.99))
    want, got = [], []
    for step, batch in enumerate(run_batches(seed=301)):
        want.append(reference.train_step(ref, ref_optimizer, batch, max_norm=1.0)["loss"])
        result = student.train_step(mine, my_optimizer, batch, max_norm=1.0)
        if not isinstance(result, dict) or "loss" not in result:
            fails(
                f"train_step at step {step} of a short training run returned {type(result).__name__}, expected a dict"
            )
        got.append(number(result["loss"], name=f"train_step's 'loss' at step {step}"))
    assert_close(
        torch.tensor(got, dtype=torch.float64),
        torch.tensor(want, dtype=torch.float64),
        name=f"the losses of {RUN_STEPS} train_steps (configure_optimizer(model, 1e-2, 0.1, (0.9, 0.99)), "
        "max_norm=1.0, float64) from the same weights and batches as the reference",
        rtol=1e-6,  # float64 runs of different summation orders agree to ~1e-12 after 20 steps
        atol=1e-9,
    )
    # The trained weights, measured here in the grader's own GPT: the run must have trained it.
    trained = reference.GPT(**RUN_CONFIG).double()
    weights = mine.state_dict()
    if not isinstance(weights, dict) or set(weights) != set(state):
        fails("the model's state_dict() after training does not have GPT's parameter names")
    trained.load_state_dict({name: expect_tensor(weights[name], name=name) for name in state})
    trained.eval()
    ids = torch.stack(run_batches(seed=302, batch=16)[:2]).flatten(0, 1)
    with torch.no_grad():
        before = F.cross_entropy(ref_start(reference, state)(ids)[:, :-1].flatten(0, 1), ids[:, 1:].flatten())
        after = F.cross_entropy(trained(ids)[:, :-1].flatten(0, 1), ids[:, 1:].flatten())
    if not float(after) < float(before) - 0.5:
        fails(
            f"after {RUN_STEPS} train_steps the model's loss went from {float(before):.3f} to {float(after):.3f} "
            "(measured by the grader); the reference's falls by more than 0.5"
        )


def ref_start(reference, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    model = reference.GPT(**RUN_CONFIG).double()
    model.load_state_dict(state)
    return model.eval()
