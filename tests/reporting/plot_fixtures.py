"""The plots a toy DVC repo declares in the reporting tests: a line chart, a confusion matrix, a bar chart
and an image, so every template the pipeline uses is exercised."""

PLOTS_YAML = """\
  - plots/fam/train/curve.csv:
      x: epoch
      y: [loss, acc]
  - plots/fam/train/confusion.csv:
      template: confusion
      x: actual
      y: predicted
  - plots/fam/train/snr.csv:
      template: bar_horizontal
      x: snr_db
      y: model
  - plots/fam/train/picture.png
"""
