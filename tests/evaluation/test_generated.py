import torch

from dlsys.evaluation.generated import label_agreement, predict_labels


class _FirstPixels(torch.nn.Module):
    """Stand-in classifier: the class is the index of the brightest of the first 10 pixels."""

    def forward(self, x):
        return x.flatten(1)[:, :10]


def test_predict_and_label_agreement():
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 2, 2])
    predicted_as = torch.tensor([0, 1, 1, 1, 2, 2, 0, 0])
    x = torch.zeros(8, 28, 28)
    x.view(8, -1)[torch.arange(8), predicted_as] = 1.0
    pred = predict_labels(_FirstPixels(), x, batch_size=3)
    assert torch.equal(pred, predicted_as)
    res = label_agreement(pred, labels, n_classes=3)
    assert res["fraction"] == 5 / 8
    rows = {r["label"]: r for r in res["per_class"]}
    assert rows[0]["fraction"] == 0.5 and rows[0]["top_other"] == 1
    assert rows[1]["fraction"] == 1.0 and rows[1]["top_other"] is None
    assert rows[2]["n"] == 4 and rows[2]["fraction"] == 0.5 and rows[2]["top_other"] == 0
    assert res["confusion"][2] == [2, 0, 2]
