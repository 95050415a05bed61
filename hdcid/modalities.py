"""The three modalities and the fixed orders the code relies on (one home; imports nothing).

Orders matter: they fix state-dict keys, optimizer-state order, the order of loss terms and so
of floating-point sums, and the order of random draws. Each order that differs from `MODALITIES`
has its own name here; never reorder one of them.
"""

from __future__ import annotations

MODALITIES = ("audio", "video", "text")  # model order: codebook inputs, losses, buffers (L, 3, D)
READ_ORDER = ("video", "audio", "text")  # ClipSet field / file order (the original's batch order)
CLUB_ORDER = ("video", "text", "audio")  # the original's CLUB estimator/optimizer order
ENCODER_ORDER = ("video", "text", "audio")  # the original encoder's self-attention call order (dropout draws)
SHORT = {"audio": "a", "video": "v", "text": "t"}  # one-letter names in logged keys (rec_a, a<-v)
# each modality's partners in MODALITIES order (MM-EMA mass and commitment of co-located features)
PARTNERS = {"audio": ("video", "text"), "video": ("audio", "text"), "text": ("audio", "video")}
PAIRS = (("audio", "video"), ("audio", "text"), ("video", "text"))  # unordered pairs, MODALITIES order
