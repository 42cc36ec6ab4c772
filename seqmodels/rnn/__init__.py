"""A NumPy Elman recurrent network trained by backpropagation through time.

``from seqmodels.rnn import ElmanRNN`` is the entry point; :mod:`.cells` holds
the cell's arithmetic (forward recurrence, BPTT) and :mod:`.train` the loss,
Adam, clipping and the epoch loop. This package knows nothing of dice or HMMs.
"""

from seqmodels.rnn.model import ElmanRNN, ForwardResult
from seqmodels.rnn.train import TrainingDivergedError

__all__ = ["ElmanRNN", "ForwardResult", "TrainingDivergedError"]
