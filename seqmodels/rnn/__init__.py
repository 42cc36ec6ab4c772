"""NumPy recurrent networks (Elman, GRU, LSTM) trained by backpropagation through time.

``from seqmodels.rnn import RNN`` is the entry point (``RNN(8, 32, 8, cell="gru")``);
:class:`ElmanRNN` (:mod:`.elman`) is the Elman one under the worked example's
parameter names.
:mod:`.cells` holds the cell interface and the Elman cell, :mod:`.gru` and
:mod:`.lstm` the gated cells, :mod:`.output` the shared softmax output layer and
:mod:`.train` the loss, Adam, clipping, stages and the epoch loop. This package
knows nothing of dice or HMMs.
"""

from seqmodels.rnn.elman import ElmanRNN, ForwardResult
from seqmodels.rnn.model import CELLS, RNN
from seqmodels.rnn.train import TrainingDivergedError

__all__ = ["CELLS", "RNN", "ElmanRNN", "ForwardResult", "TrainingDivergedError"]
