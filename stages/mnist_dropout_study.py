"""mnist_dropout_study: 1024×5 FC net, Adam; {sigmoid+Xavier, ReLU+He} × {no dropout, dropout}.

Dropout: p_input on the input pixels, p_hidden on the input of every later layer. Train and test
error per epoch for the four runs, overlaid; each run is stated as learns, stalls, overfits or diverges
(mnist.run_state).
"""

from dlsys.core.context import stage_main
from dlsys.tasks import mnist

if __name__ == "__main__":
    stage_main("mnist_dropout_study", mnist.run_dropout_study, __doc__)
