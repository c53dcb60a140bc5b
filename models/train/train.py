#!/usr/bin/python3
"""Train fanout's demo member models and write them as ONNX, with golden files and metrics.

Run with Debian's interpreter (/usr/bin/python3) and Debian's python3-sklearn, python3-onnx and
python3-torch (see train.sh). There is no skl2onnx here, so every sklearn model is written as an
ONNX graph by hand with onnx.helper from its fitted coefficients; the torch model goes through
torch.onnx.export.

Contract of every .onnx file: one input `input`, float32 [N, F] with N dynamic, RAW features in the
data set's column order (scaling happens inside the graph); one output `probabilities`, float32
[N, C] in class order. No ZipMap, no label output. Opsets: ai.onnx 15, ai.onnx.ml 3.

Everything is seeded (42) and single-threaded, so two runs on one machine write byte-identical
.onnx files. Usage: train.py [--out DIR] [--only ID[,ID...]] (default out: the models/ folder this
script lives in). --only writes just the named members' files and metrics entries and leaves every
other file as it is: tree learners can pick another of two equally good splits on another CPU, so a
full run elsewhere may rewrite a member that did not change.

Candidates (candidate_specs) are trained on the same split like the members, with their own ONNX
file and golden file, but are not part of the stacking meta-model or the ensemble golden file: they
are meant to be tried as shadow members first (see the README's rollout recipe).
"""
import os

# Single-threaded BLAS/OpenMP before numpy/torch load: bit-for-bit reproducible float sums.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import datetime
import hashlib
import io
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import sklearn
import torch
from onnx import TensorProto, helper, numpy_helper
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

SEED = 42
OPSET = 15  # ai.onnx; <= 17 as required by the serving side
ML_OPSET = 3  # ai.onnx.ml
N_GOLDEN = 40
N_FOLDS = 5
MAX_TREE_FILE_BYTES = 1_000_000
PRODUCER = "fanout-models-train"

MODELS_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = MODELS_DIR / "data"

torch.manual_seed(SEED)
torch.set_num_threads(1)
torch.set_num_interop_threads(1)
torch.use_deterministic_algorithms(True)


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

DATASETS = {
    "breast-cancer": {
        "loader": load_breast_cancer,
        "csv": "breast_cancer.csv",
        "title": "Breast Cancer Wisconsin (Diagnostic)",
        "prefix": "bc",
    },
    "wine": {
        "loader": load_wine,
        "csv": "wine_data.csv",
        "title": "Wine recognition",
        "prefix": "wine",
    },
}


def load_dataset(name):
    """Load through sklearn and assert the vendored CSV in models/data holds exactly the same data."""
    spec = DATASETS[name]
    bunch = spec["loader"]()
    X = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.int64)
    labels = [str(s) for s in bunch.target_names]
    features = [str(s) for s in bunch.feature_names]

    csv_path = DATA_DIR / spec["csv"]
    with open(csv_path) as f:
        header = f.readline().strip().split(",")
    assert int(header[0]) == X.shape[0] and int(header[1]) == X.shape[1], (csv_path, header)
    assert header[2:] == labels, (csv_path, header, labels)
    raw = np.loadtxt(csv_path, delimiter=",", skiprows=1, dtype=np.float64)
    assert raw.shape == (X.shape[0], X.shape[1] + 1), raw.shape
    assert np.array_equal(raw[:, :-1], X), f"{csv_path} differs from sklearn's data"
    assert np.array_equal(raw[:, -1].astype(np.int64), y), f"{csv_path} targets differ"
    return X, y, labels, features


# --------------------------------------------------------------------------------------------
# Torch member
# --------------------------------------------------------------------------------------------


class TorchMLPModule(torch.nn.Module):
    """Standardisation (as buffers) + 2 hidden ReLU layers + softmax: raw features in, probabilities out."""

    def __init__(self, mean, scale, n_in, hidden, n_out):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32))
        self.net = torch.nn.Sequential(
            torch.nn.Linear(n_in, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, n_out),
        )

    def logits(self, x):
        return self.net((x - self.mean) / self.scale)

    def forward(self, x):
        return torch.softmax(self.logits(x), dim=1)


class TorchMLPClassifier(ClassifierMixin, BaseEstimator):
    """sklearn face for the torch model, so cross_val_predict can make out-of-fold probabilities."""

    def __init__(self, hidden=16, epochs=300, lr=0.01, weight_decay=1e-3, seed=SEED):
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.seed = seed

    def fit(self, X, y):
        torch.manual_seed(self.seed)  # every fit (each CV fold too) starts from the same state
        self.classes_ = np.unique(y)
        Xf = np.asarray(X, dtype=np.float32)
        mean = Xf.mean(axis=0)
        scale = Xf.std(axis=0)
        scale[scale == 0] = 1.0
        self.module_ = TorchMLPModule(mean, scale, Xf.shape[1], self.hidden, len(self.classes_))
        xt = torch.from_numpy(Xf)
        yt = torch.from_numpy(np.searchsorted(self.classes_, y).astype(np.int64))
        opt = torch.optim.Adam(self.module_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        loss_fn = torch.nn.CrossEntropyLoss()
        self.module_.train()
        for _ in range(self.epochs):  # full batch: no shuffling to seed
            opt.zero_grad()
            loss = loss_fn(self.module_.logits(xt), yt)
            loss.backward()
            opt.step()
        self.module_.eval()
        return self

    def predict_proba(self, X):
        with torch.no_grad():
            out = self.module_(torch.from_numpy(np.asarray(X, dtype=np.float32)))
        return out.numpy().astype(np.float64)

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class PlattSVC(ClassifierMixin, BaseEstimator):
    """Binary RBF SVM whose probabilities are exactly Platt's sigmoid of the decision value.

    sklearn's SVC.predict_proba goes through libsvm's pairwise coupling, an iteration that stops at
    a tolerance (0.0025 for two classes) and so differs from the sigmoid by up to about 0.003. The
    exported graph computes the sigmoid itself, so this wrapper does too: the golden file, the
    metrics and the ONNX file all describe the same function.
    """

    def __init__(self, C=1.0, gamma="scale", seed=SEED):
        self.C = C
        self.gamma = gamma
        self.seed = seed

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        assert len(self.classes_) == 2, "PlattSVC is binary"
        self.svc_ = SVC(kernel="rbf", C=self.C, gamma=self.gamma, probability=True, random_state=self.seed)
        self.svc_.fit(X, y)
        return self

    def predict_proba(self, X):
        f = self.svc_.decision_function(X)  # > 0 for classes_[1]
        a, b = float(self.svc_.probA_[0]), float(self.svc_.probB_[0])
        p1 = 1.0 / (1.0 + np.exp(a * f - b))
        return np.column_stack([1.0 - p1, p1])

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


# --------------------------------------------------------------------------------------------
# ONNX writing helpers
# --------------------------------------------------------------------------------------------


def f32(a):
    return np.asarray(a, dtype=np.float32)


def init(name, array):
    return numpy_helper.from_array(np.ascontiguousarray(array), name)


def finish_model(member_id, family, nodes, initializers, n_features, n_classes, labels, uses_ml):
    graph = helper.make_graph(
        nodes,
        member_id,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", n_features])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", n_classes])],
        initializer=initializers,
        doc_string=f"{member_id}: {family}; raw features in, class probabilities out",
    )
    opsets = [helper.make_opsetid("", OPSET)]
    if uses_ml:
        opsets.append(helper.make_opsetid("ai.onnx.ml", ML_OPSET))
    model = helper.make_model(graph, opset_imports=opsets, producer_name=PRODUCER, producer_version="1")
    return annotate(model, member_id, family, labels)


def annotate(model, member_id, family, labels):
    model.doc_string = f"fanout member {member_id} ({family})"
    model.graph.name = member_id
    del model.metadata_props[:]
    for key, value in (("model", member_id), ("family", family), ("labels", json.dumps(labels))):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model


def scaler_nodes(scaler):
    """StandardScaler as Sub/Div on the raw input; returns (nodes, initializers, output name)."""
    scale = np.asarray(scaler.scale_, dtype=np.float64).copy()
    scale[scale == 0] = 1.0
    inits = [init("scaler_mean", f32(scaler.mean_)), init("scaler_scale", f32(scale))]
    nodes = [
        helper.make_node("Sub", ["input", "scaler_mean"], ["centered"], name="scaler_sub"),
        helper.make_node("Div", ["centered", "scaler_scale"], ["scaled"], name="scaler_div"),
    ]
    return nodes, inits, "scaled"


def binary_head(p1_name, nodes, inits):
    """[N,1] probability of class 1 -> probabilities [N,2] = [1-p, p]."""
    inits.append(init("one", f32([1.0])))
    nodes.append(helper.make_node("Sub", ["one", p1_name], ["p0"], name="complement"))
    nodes.append(helper.make_node("Concat", ["p0", p1_name], ["probabilities"], axis=1, name="concat_probs"))


def linear_onnx(member_id, pipe, labels):
    scaler, clf = pipe.named_steps["scaler"], pipe.named_steps["clf"]
    nodes, inits, x = scaler_nodes(scaler)
    coef = np.asarray(clf.coef_)
    inits += [init("coef", f32(coef.T)), init("intercept", f32(clf.intercept_))]
    nodes.append(helper.make_node("MatMul", [x, "coef"], ["xw"], name="matmul"))
    nodes.append(helper.make_node("Add", ["xw", "intercept"], ["logits"], name="add_bias"))
    if len(labels) == 2:
        nodes.append(helper.make_node("Sigmoid", ["logits"], ["p1"], name="sigmoid"))
        binary_head("p1", nodes, inits)
    else:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1, name="softmax"))
    family = "StandardScaler + LogisticRegression" + (" (multinomial)" if len(labels) > 2 else "")
    return finish_model(member_id, family, nodes, inits, coef.shape[1], len(labels), labels, False)


def mlp_onnx(member_id, pipe, labels):
    scaler, clf = pipe.named_steps["scaler"], pipe.named_steps["clf"]
    nodes, inits, x = scaler_nodes(scaler)
    act = {"relu": "Relu", "tanh": "Tanh", "logistic": "Sigmoid"}[clf.activation]
    n_layers = len(clf.coefs_)
    for i, (W, b) in enumerate(zip(clf.coefs_, clf.intercepts_)):
        inits += [init(f"W{i}", f32(W)), init(f"b{i}", f32(b))]
        nodes.append(helper.make_node("MatMul", [x, f"W{i}"], [f"mm{i}"], name=f"matmul{i}"))
        nodes.append(helper.make_node("Add", [f"mm{i}", f"b{i}"], [f"z{i}"], name=f"add{i}"))
        x = f"z{i}"
        if i < n_layers - 1:
            nodes.append(helper.make_node(act, [x], [f"h{i}"], name=f"act{i}"))
            x = f"h{i}"
    if clf.out_activation_ == "logistic":  # binary: one output unit
        nodes.append(helper.make_node("Sigmoid", [x], ["p1"], name="sigmoid"))
        binary_head("p1", nodes, inits)
    else:
        assert clf.out_activation_ == "softmax", clf.out_activation_
        nodes.append(helper.make_node("Softmax", [x], ["probabilities"], axis=1, name="softmax"))
    family = f"StandardScaler + MLPClassifier {tuple(clf.hidden_layer_sizes)} {clf.activation}"
    return finish_model(member_id, family, nodes, inits, clf.coefs_[0].shape[0], len(labels), labels, False)


def float32_threshold(t):
    """Largest float32 <= t. sklearn compares float32(x) <= float64 threshold; ORT compares
    float32(x) <= float32 threshold. With this rounding both give the same branch for every x."""
    t32 = np.float32(t)
    if float(t32) > t:
        t32 = np.nextafter(t32, np.float32(-np.inf))
    return float(t32)


def tree_nodes(tree, tree_id, attrs):
    """Append one sklearn tree's structure to the TreeEnsemble node attributes; returns leaf ids."""
    t = tree.tree_
    leaves = []
    for node in range(t.node_count):
        attrs["nodes_treeids"].append(tree_id)
        attrs["nodes_nodeids"].append(node)
        left, right = int(t.children_left[node]), int(t.children_right[node])
        if left == -1:  # leaf
            attrs["nodes_featureids"].append(0)
            attrs["nodes_values"].append(0.0)
            attrs["nodes_modes"].append("LEAF")
            attrs["nodes_truenodeids"].append(0)
            attrs["nodes_falsenodeids"].append(0)
            leaves.append(node)
        else:  # sklearn goes left when x <= threshold
            attrs["nodes_featureids"].append(int(t.feature[node]))
            attrs["nodes_values"].append(float32_threshold(float(t.threshold[node])))
            attrs["nodes_modes"].append("BRANCH_LEQ")
            attrs["nodes_truenodeids"].append(left)
            attrs["nodes_falsenodeids"].append(right)
    return leaves


def empty_tree_attrs():
    keys = ["nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values", "nodes_modes",
            "nodes_truenodeids", "nodes_falsenodeids"]
    return {k: [] for k in keys}


def random_forest_onnx(member_id, rf, labels):
    n_classes = len(labels)
    n_trees = len(rf.estimators_)
    attrs = empty_tree_attrs()
    cls = {"class_treeids": [], "class_nodeids": [], "class_ids": [], "class_weights": []}
    for tree_id, est in enumerate(rf.estimators_):
        for leaf in tree_nodes(est, tree_id, attrs):
            value = np.asarray(est.tree_.value[leaf][0], dtype=np.float64)
            fractions = value / value.sum()
            for c in range(n_classes):  # every class at every leaf, zeros too (ORT 1.30 quirk)
                cls["class_treeids"].append(tree_id)
                cls["class_nodeids"].append(leaf)
                cls["class_ids"].append(c)
                cls["class_weights"].append(float(np.float32(fractions[c] / n_trees)))
    node = helper.make_node(
        "TreeEnsembleClassifier", ["input"], ["label_unused", "probabilities"], domain="ai.onnx.ml",
        name="forest", classlabels_int64s=list(range(n_classes)), post_transform="NONE", **attrs, **cls,
    )
    family = f"RandomForestClassifier ({n_trees} trees, max_depth {rf.max_depth})"
    return finish_model(member_id, family, [node], [], rf.n_features_in_, n_classes, labels, True)


def gradient_boosting_onnx(member_id, gb, labels, X_any):
    assert len(labels) == 2 and gb.estimators_.shape[1] == 1, "binary gradient boosting only"
    base = float(gb._raw_predict_init(X_any[:1])[0, 0])  # init raw score (prior log-odds)
    attrs = empty_tree_attrs()
    tgt = {"target_treeids": [], "target_nodeids": [], "target_ids": [], "target_weights": []}
    for tree_id, est in enumerate(gb.estimators_[:, 0]):
        for leaf in tree_nodes(est, tree_id, attrs):
            tgt["target_treeids"].append(tree_id)
            tgt["target_nodeids"].append(leaf)
            tgt["target_ids"].append(0)
            tgt["target_weights"].append(float(np.float32(gb.learning_rate * est.tree_.value[leaf][0][0])))
    nodes = [
        helper.make_node(
            "TreeEnsembleRegressor", ["input"], ["raw_score"], domain="ai.onnx.ml", name="boosted_trees",
            n_targets=1, aggregate_function="SUM", post_transform="NONE", base_values=[base], **attrs, **tgt,
        ),
        helper.make_node("Sigmoid", ["raw_score"], ["p1"], name="sigmoid"),
    ]
    inits = []
    binary_head("p1", nodes, inits)
    family = f"GradientBoostingClassifier ({gb.n_estimators_} trees, max_depth {gb.max_depth})"
    return finish_model(member_id, family, nodes, inits, gb.n_features_in_, len(labels), labels, True)


def svm_onnx(member_id, pipe, labels):
    """Scaler, RBF kernel against every support vector, dual coefficients, Platt sigmoid.

    Distances are computed as the sum of squared differences ([N, S, F] then ReduceSum), not as
    |x|^2 - 2x.s + |s|^2, which would cancel badly in float32."""
    scaler, clf = pipe.named_steps["scaler"], pipe.named_steps["clf"]
    svc = clf.svc_
    nodes, inits, x = scaler_nodes(scaler)
    sv = np.asarray(svc.support_vectors_, dtype=np.float64)
    a, b = float(svc.probA_[0]), float(svc.probB_[0])
    inits += [
        init("axis1", np.array([1], dtype=np.int64)),
        init("axis2", np.array([2], dtype=np.int64)),
        init("support_vectors", f32(sv)),
        init("neg_gamma", f32([-float(svc._gamma)])),
        init("dual_coef", f32(np.asarray(svc.dual_coef_).T)),
        init("intercept", f32(svc.intercept_)),
        init("platt_scale", f32([-a])),
        init("platt_shift", f32([b])),
    ]
    nodes += [
        helper.make_node("Unsqueeze", [x, "axis1"], ["x3"], name="unsqueeze"),
        helper.make_node("Sub", ["x3", "support_vectors"], ["diff"], name="diff"),
        helper.make_node("Mul", ["diff", "diff"], ["sq"], name="square"),
        helper.make_node("ReduceSum", ["sq", "axis2"], ["dist2"], keepdims=0, name="dist2"),
        helper.make_node("Mul", ["dist2", "neg_gamma"], ["kernel_arg"], name="scale_gamma"),
        helper.make_node("Exp", ["kernel_arg"], ["kernel"], name="rbf"),
        helper.make_node("MatMul", ["kernel", "dual_coef"], ["kd"], name="dual"),
        helper.make_node("Add", ["kd", "intercept"], ["decision"], name="add_intercept"),
        helper.make_node("Mul", ["decision", "platt_scale"], ["platt_ax"], name="platt_mul"),
        helper.make_node("Add", ["platt_ax", "platt_shift"], ["platt_z"], name="platt_add"),
        helper.make_node("Sigmoid", ["platt_z"], ["p1"], name="sigmoid"),
    ]
    binary_head("p1", nodes, inits)
    family = f"StandardScaler + SVC (RBF, C {clf.C:g}, {len(sv)} support vectors) + Platt scaling"
    return finish_model(member_id, family, nodes, inits, sv.shape[1], len(labels), labels, False)


def torch_onnx(member_id, clf, labels, n_features):
    buf = io.BytesIO()
    torch.onnx.export(
        clf.module_, torch.zeros(1, n_features, dtype=torch.float32), buf,
        input_names=["input"], output_names=["probabilities"],
        dynamic_axes={"input": {0: "N"}, "probabilities": {0: "N"}},
        opset_version=OPSET, do_constant_folding=True,
    )
    model = onnx.load_from_string(buf.getvalue())
    family = f"torch MLP (2x{clf.hidden} ReLU, softmax; Adam {clf.epochs} full-batch epochs)"
    return annotate(model, member_id, family, labels)


def check_contract(model, n_features, n_classes):
    onnx.checker.check_model(model, full_check=True)
    g = model.graph
    assert [i.name for i in g.input if i.name not in {x.name for x in g.initializer}] == ["input"]
    assert [o.name for o in g.output] == ["probabilities"], [o.name for o in g.output]
    for vi, last in ((g.input[0], n_features), (g.output[0], n_classes)):
        t = vi.type.tensor_type
        assert t.elem_type == TensorProto.FLOAT
        dims = t.shape.dim
        assert len(dims) == 2 and dims[0].dim_param and not dims[0].HasField("dim_value"), vi
        assert dims[1].dim_value == last, vi
    for op in model.opset_import:
        assert (op.domain in ("", "ai.onnx") and op.version <= 17) or (op.domain == "ai.onnx.ml" and op.version <= 3), op
    for n in g.node:
        assert n.op_type != "ZipMap"


# --------------------------------------------------------------------------------------------
# Members per data set
# --------------------------------------------------------------------------------------------


def scaled(clf):
    return Pipeline([("scaler", StandardScaler()), ("clf", clf)])


def member_specs(name):
    """(member id, family key, unfitted estimator). Order here is the member order everywhere."""
    if name == "breast-cancer":
        return [
            ("bc-logreg", "logreg", scaled(LogisticRegression(C=1.0, max_iter=5000, random_state=SEED))),
            ("bc-random-forest", "random-forest",
             RandomForestClassifier(n_estimators=100, max_depth=8, random_state=SEED, n_jobs=1)),
            ("bc-gradient-boosting", "gradient-boosting",
             GradientBoostingClassifier(n_estimators=100, max_depth=3, learning_rate=0.1, random_state=SEED)),
            ("bc-mlp", "mlp", scaled(MLPClassifier(hidden_layer_sizes=(32,), alpha=1e-2, max_iter=2000,
                                                   random_state=SEED))),
            ("bc-torch-mlp", "torch-mlp", TorchMLPClassifier(hidden=16, epochs=300, lr=0.01, weight_decay=1e-3)),
        ]
    return [
        ("wine-logreg", "logreg", scaled(LogisticRegression(C=1.0, max_iter=5000, random_state=SEED))),
        ("wine-random-forest", "random-forest",
         RandomForestClassifier(n_estimators=100, max_depth=8, random_state=SEED, n_jobs=1)),
        ("wine-mlp", "mlp", scaled(MLPClassifier(hidden_layer_sizes=(16,), alpha=1e-2, max_iter=2000,
                                                 random_state=SEED))),
    ]


def candidate_specs(name):
    """Like member_specs, for models to try as shadow members: not stacked, not in the ensemble golden."""
    if name == "breast-cancer":
        return [("bc-svm", "svm", scaled(PlattSVC(C=1.0, gamma="scale")))]
    return []


def to_onnx(member_id, family, est, labels, X):
    if family == "logreg":
        return linear_onnx(member_id, est, labels)
    if family == "mlp":
        return mlp_onnx(member_id, est, labels)
    if family == "random-forest":
        return random_forest_onnx(member_id, est, labels)
    if family == "gradient-boosting":
        return gradient_boosting_onnx(member_id, est, labels, X)
    if family == "torch-mlp":
        return torch_onnx(member_id, est, labels, X.shape[1])
    if family == "svm":
        return svm_onnx(member_id, est, labels)
    raise ValueError(family)


def family_title(model):
    return next(p.value for p in model.metadata_props if p.key == "family")


# --------------------------------------------------------------------------------------------
# Metrics, JSON
# --------------------------------------------------------------------------------------------


def auc(y, P):
    if P.shape[1] == 2:
        return float(roc_auc_score(y, P[:, 1]))
    return float(roc_auc_score(y, P, multi_class="ovr", average="macro"))


def acc(y, P):
    return float(accuracy_score(y, np.argmax(P, axis=1)))


def softmax_rows(Z):
    Z = Z - Z.max(axis=1, keepdims=True)
    E = np.exp(Z)
    return E / E.sum(axis=1, keepdims=True)


def plain(v):
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [plain(x) for x in v]
    if isinstance(v, (np.floating, float)):
        return float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    return v


def dumps(v, indent=0):
    """JSON with dicts indented and each innermost array (a row, a vector) on one line."""
    pad = "  " * indent
    if isinstance(v, dict):
        if not v:
            return "{}"
        items = [f'{pad}  {json.dumps(k)}: {dumps(x, indent + 1)}' for k, x in v.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(v, list) and any(isinstance(x, (list, dict)) for x in v):
        items = [f"{pad}  {dumps(x, indent + 1)}" for x in v]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(v, allow_nan=False, separators=(", ", ": "))


def write_json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(plain(obj)) + "\n")


# --------------------------------------------------------------------------------------------
# Stacking
# --------------------------------------------------------------------------------------------


def stacking_json(meta, member_ids, labels, feature_means):
    coef = np.asarray(meta.coef_, dtype=np.float64)
    intercept = np.asarray(meta.intercept_, dtype=np.float64)
    if len(labels) == 2:  # sigmoid(w.x+b) == softmax([0, w.x+b])[1]
        coef = np.vstack([np.zeros_like(coef[0]), coef[0]])
        intercept = np.array([0.0, intercept[0]])
    return {
        "type": "softmax-linear",
        "members": member_ids,
        "labels": labels,
        "coef": coef.tolist(),
        "intercept": intercept.tolist(),
        "featureMeans": feature_means.tolist(),
        "trainedOn": f"out-of-fold member probabilities, {N_FOLDS} folds, training split",
    }


def apply_stacking(spec, features):
    return softmax_rows(features @ np.asarray(spec["coef"]).T + np.asarray(spec["intercept"]))


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def train_dataset(name, out, today, only=None, previous=None):
    """Fits every member and candidate of a data set in memory; writes the files of those in `only`
    (all when None). With `only`, the split, the stacking meta-model and the ensemble golden file
    are left as they are, and the other models' metrics entries are taken from `previous`."""
    previous = previous or {}
    prev_models = {m["id"]: m for m in previous.get("models", [])}
    prev_ens = next((e for e in previous.get("ensembles", []) if e["dataset"] == name), None)
    full = only is None
    X, y, labels, features = load_dataset(name)
    n, f = X.shape
    c = len(labels)
    idx = np.arange(n)
    idx_tr, idx_te = train_test_split(idx, test_size=0.25, stratify=y, random_state=SEED)
    X_tr, y_tr, X_te, y_te = X[idx_tr], y[idx_tr], X[idx_te], y[idx_te]
    golden_idx = idx_te[:N_GOLDEN]  # fixed: the first 40 held-out rows in train_test_split's order
    X_gold = X[golden_idx]
    split_desc = f"{len(idx_tr)} train / {len(idx_te)} held-out, stratified, train_test_split(test_size=0.25, random_state={SEED})"

    if full:
        write_json(out / name / "split.json", {
            "dataset": name,
            "rows": n,
            "method": f"sklearn train_test_split(test_size=0.25, stratify=y, random_state={SEED})",
            "test": sorted(int(i) for i in idx_te),
            "train": sorted(int(i) for i in idx_tr),
        })

    cv = StratifiedKFold(n_splits=N_FOLDS, shuffle=True, random_state=SEED)
    members, candidates, oof_blocks, test_blocks, gold_blocks, cand_test_blocks = [], [], [], [], [], []
    specs = [(s, False) for s in member_specs(name)] + [(s, True) for s in candidate_specs(name)]
    for (member_id, family, est), is_candidate in specs:
        t0 = time.time()
        oof = cross_val_predict(est, X_tr, y_tr, cv=cv, method="predict_proba", n_jobs=1)
        est.fit(X_tr, y_tr)
        P_te, P_all, P_gold = est.predict_proba(X_te), est.predict_proba(X), est.predict_proba(X_gold)
        model = to_onnx(member_id, family, est, labels, X)
        check_contract(model, f, c)
        rel = Path(name) / f"{family}.onnx"
        data = model.SerializeToString()
        if family in ("random-forest", "gradient-boosting"):
            assert len(data) < MAX_TREE_FILE_BYTES, (rel, len(data))
        m = {
            "id": member_id,
            "family": family_title(model),
            "kind": "onnx",
            "file": rel.as_posix(),
            "dataset": name,
            "trainedOn": today,
            "split": split_desc,
            "features": f,
            "labels": labels,
            "heldOut": {"rows": len(idx_te), "accuracy": acc(y_te, P_te), "rocAuc": auc(y_te, P_te)},
            "wholeData": {"rows": n, "accuracy": acc(y, P_all)},
            "cvTrainAccuracy": acc(y_tr, oof),
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "opset": {op.domain or "ai.onnx": op.version for op in model.opset_import},
        }
        if is_candidate:
            m["role"] = "candidate"
        assert m["wholeData"]["accuracy"] >= 0.93, m
        prev = prev_models.get(member_id)
        if prev and prev.get("sha256") == m["sha256"]:
            m["trainedOn"] = prev["trainedOn"]  # the same file: keep the date it was first written
        if full or member_id in only:
            path = out / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            write_json(out / name / "golden" / f"{member_id}.json", {
                "model": member_id, "labels": labels, "rows": X_gold.tolist(), "probabilities": P_gold.tolist(),
            })
            note = "written"
        elif prev:
            note = "kept" if prev.get("sha256") == m["sha256"] else "kept (this run differs)"
            m = prev
        else:
            raise SystemExit(f"{member_id} has no entry in metrics.json yet: include it in --only")
        (candidates if is_candidate else members).append(m)
        if is_candidate:
            cand_test_blocks.append(P_te)
        else:
            oof_blocks.append(oof)
            test_blocks.append(P_te)
            gold_blocks.append(P_gold)
        print(f"  {member_id:22s} held-out acc {m['heldOut']['accuracy']:.4f} auc {m['heldOut']['rocAuc']:.4f} "
              f"whole acc {m['wholeData']['accuracy']:.4f} {m['bytes']:7d} B {time.time() - t0:6.2f} s {note}",
              flush=True)

    member_ids = [m["id"] for m in members]
    if full or prev_ens is None:
        oof_feats = np.hstack(oof_blocks)
        test_feats = np.hstack(test_blocks)
        gold_feats = np.hstack(gold_blocks)
        meta = LogisticRegression(C=1.0, max_iter=5000, random_state=SEED).fit(oof_feats, y_tr)
        spec = stacking_json(meta, member_ids, labels, oof_feats.mean(axis=0))
        for feats in (oof_feats, test_feats, gold_feats):  # the JSON formula is the meta-model
            assert np.allclose(apply_stacking(spec, feats), meta.predict_proba(feats), rtol=0, atol=1e-12)
        write_json(out / name / "stacking-meta.json", spec)
        soft_te = np.mean(test_blocks, axis=0)
        stack_te = apply_stacking(spec, test_feats)
        ens = {
            "dataset": name,
            "members": member_ids,
            "softVote": {"heldOut": {"accuracy": acc(y_te, soft_te), "rocAuc": auc(y_te, soft_te)}},
            "stacking": {"file": f"{name}/stacking-meta.json",
                         "heldOut": {"accuracy": acc(y_te, stack_te), "rocAuc": auc(y_te, stack_te)}},
            "split": split_desc,
        }
        assert ens["softVote"]["heldOut"]["accuracy"] >= 0.95, ens
        write_json(out / name / "golden" / "ensemble.json", {
            "members": member_ids,
            "labels": labels,
            "rows": X_gold.tolist(),
            "softVote": np.mean(gold_blocks, axis=0).tolist(),
            "stacking": apply_stacking(spec, gold_feats).tolist(),
        })
    else:
        ens = {k: v for k, v in prev_ens.items() if k != "withCandidates"}
    if candidates:
        # What promoting every candidate to a counted member would give (soft vote, held-out).
        both_te = np.mean(test_blocks + cand_test_blocks, axis=0)
        ens["withCandidates"] = {
            "members": member_ids + [m["id"] for m in candidates],
            "softVote": {"heldOut": {"accuracy": acc(y_te, both_te), "rocAuc": auc(y_te, both_te)}},
        }
    print(f"  {'soft vote':22s} held-out acc {ens['softVote']['heldOut']['accuracy']:.4f} "
          f"auc {ens['softVote']['heldOut']['rocAuc']:.4f}")
    print(f"  {'stacking':22s} held-out acc {ens['stacking']['heldOut']['accuracy']:.4f} "
          f"auc {ens['stacking']['heldOut']['rocAuc']:.4f}", flush=True)
    if candidates:
        w = ens["withCandidates"]["softVote"]["heldOut"]
        print(f"  {'soft vote + candidates':22s} held-out acc {w['accuracy']:.4f} auc {w['rocAuc']:.4f}", flush=True)
    info = {
        "title": DATASETS[name]["title"],
        "file": f"data/{DATASETS[name]['csv']}",
        "rows": n,
        "features": features,
        "labels": labels,
        "classCounts": np.bincount(y).tolist(),
        "split": {"train": len(idx_tr), "test": len(idx_te), "stratified": True, "seed": SEED,
                  "file": f"{name}/split.json"},
        "golden": f"first {N_GOLDEN} held-out rows in train_test_split order",
    }
    return info, members + candidates, ens


def model_card(metrics):
    L = []
    L.append("# fanout demo models: model card\n")
    L.append("Written by `models/train/train.py` (run `models/train/train.sh`); do not edit by hand: "
             "rerun the trainer. Machine-readable figures: `metrics.json`.\n")
    L.append(f"Trained on {metrics['trainedOn']} with {', '.join(f'{k} {v}' for k, v in metrics['versions'].items())}.\n")
    L.append("## Data\n")
    for name, d in metrics["datasets"].items():
        L.append(f"- **{name}**: {d['title']} (`models/{d['file']}`), {d['rows']} rows, {len(d['features'])} "
                 f"numeric features, classes {', '.join(f'{l} ({k})' for l, k in zip(d['labels'], d['classCounts']))}. "
                 f"Split: {d['split']['train']} train / {d['split']['test']} held-out, stratified, seed "
                 f"{d['split']['seed']} (`models/{d['split']['file']}`). Provenance and licence: `models/data/README.md`.")
    L.append("")
    L.append("## Members\n")
    L.append("Every file takes one input `input` (float32 [N, F], raw features in the data set's column order; "
             "any scaling is inside the graph) and gives one output `probabilities` (float32 [N, C], class order). "
             "Held-out figures are on the held-out split; whole-data accuracy is on all rows, training rows included "
             "(optimistic, used as a regression check for serving). ROC AUC: binary on the benign probability; "
             "wine one-vs-rest macro.\n")
    L.append("| id | family | data set | trained | held-out acc | held-out ROC AUC | whole-data acc | file | bytes | sha256 |")
    L.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    def figure(section, key):
        v = (section or {}).get(key)
        return f"{v:.4f}" if isinstance(v, (int, float)) else "–"
    for m in metrics["models"]:
        # Rows of models added with `fanout models add` use the same layout (cli/model-files.ts).
        L.append(f"| `{m['id']}` | {m['family']} | {m.get('dataset') or '–'} | {m.get('trainedOn') or m.get('addedOn') or '–'} | "
                 f"{figure(m.get('heldOut'), 'accuracy')} | {figure(m.get('heldOut'), 'rocAuc')} | "
                 f"{figure(m.get('wholeData'), 'accuracy')} | `{m['file']}` | {m['bytes']} | `{m['sha256'][:16]}…` |")
    L.append("")
    L.append("## Ensembles (held-out split)\n")
    L.append("| data set | members | soft vote acc | soft vote AUC | stacking acc | stacking AUC |")
    L.append("| --- | --- | --- | --- | --- | --- |")
    for e in metrics["ensembles"]:
        L.append(f"| {e['dataset']} | {', '.join(e['members'])} | {e['softVote']['heldOut']['accuracy']:.4f} | "
                 f"{e['softVote']['heldOut']['rocAuc']:.4f} | {e['stacking']['heldOut']['accuracy']:.4f} | "
                 f"{e['stacking']['heldOut']['rocAuc']:.4f} |")
    L.append("")
    L.append("Soft vote is the mean of the members' probabilities. Stacking (`<set>/stacking-meta.json`) is a "
             "multinomial logistic regression over the concatenated member probabilities (member order as listed), "
             "trained on out-of-fold probabilities (5 stratified folds) of the training split only: "
             "`p = softmax(coef · x + intercept)`. `featureMeans` (mean out-of-fold probability per feature) can "
             "stand in for a failed member's probabilities.\n")
    cands = [m for m in metrics["models"] if m.get("role") == "candidate"]
    if cands:
        L.append("## Candidates\n")
        L.append("Trained on the same split like the members, but not part of the stacking meta-model or of "
                 "`golden/ensemble.json`: models to try on real traffic as shadow members before they count "
                 "(the README's rollout recipe; `models/manifest.json` says where each one runs).\n")
        for m in cands:
            L.append(f"- `{m['id']}` ({m['family']}): held-out accuracy {m['heldOut']['accuracy']:.4f}, "
                     f"ROC AUC {m['heldOut']['rocAuc']:.4f}.")
        for e in metrics["ensembles"]:
            w = e.get("withCandidates")
            if w:
                L.append(f"- {e['dataset']}: soft vote of {', '.join(w['members'])}: held-out accuracy "
                         f"{w['softVote']['heldOut']['accuracy']:.4f}, ROC AUC {w['softVote']['heldOut']['rocAuc']:.4f} "
                         f"(the members alone: {e['softVote']['heldOut']['accuracy']:.4f}, "
                         f"{e['softVote']['heldOut']['rocAuc']:.4f}).")
        L.append("")
        L.append("`PlattSVC` probabilities are Platt's sigmoid of the SVM decision value, exactly, in the "
                 "graph and in the golden file; scikit-learn's own `SVC.predict_proba` goes through libsvm's "
                 "pairwise coupling, which stops at a tolerance and differs by up to about 0.003.\n")
    L.append("## Golden files\n")
    L.append("`<set>/golden/<member-id>.json` holds 40 held-out rows (raw features) and the trainer's own "
             "probabilities for them (sklearn `predict_proba` in float64, or the torch forward pass in float32). "
             "The ONNX graphs reproduce them within 1e-5 when run in float32 with onnxruntime. "
             "`<set>/golden/ensemble.json` holds the soft-vote and stacking outputs for the same rows.\n")
    L.append("## Added models\n")
    L.append("Rows whose family reads `added: <exporter>` were added with `npx fanout models add`, not trained here: "
             "their figures were measured by onnxruntime-node on the bundled data when they were added (whole data "
             "and the same held-out split; a dash where the feature set has no bundled data), and their golden files "
             "hold onnxruntime's own output for the rows above. A retrain keeps them (`addedBy` in metrics.json).\n")
    L.append("## Intended use\n")
    L.append("Demonstration and test fixtures for the fanout ensembling service: real, small models with known "
             "outputs, to exercise fan-out, ensembling strategies, quorum and failure handling end to end.\n")
    L.append("## Limitations\n")
    L.append("- **Not a diagnostic device.** The breast cancer models must not be used for any medical decision. "
             "They were fitted on 426 rows of a 1990s single-centre data set (fine-needle aspirate image features "
             "from the University of Wisconsin) and have not been validated on any other population, imaging "
             "set-up or feature extraction.")
    L.append("- The wine models know only three cultivars from one Italian region (178 samples); anything else "
             "will still be forced into one of the three classes.")
    L.append("- Held-out sets are small (143 and 45 rows): accuracy figures have wide confidence intervals "
             "(one error is 0.7 and 2.2 points respectively).")
    L.append("- Probabilities are not calibrated beyond what each training method gives; the random forest's are "
             "coarse vote fractions.")
    L.append("- Inputs are raw features in the data set's units and column order; no check for out-of-range or "
             "missing values is made by the models themselves.")
    L.append("- Files are byte-identical across runs on one machine; on other machines (BLAS, CPU) compare with "
             "a tolerance, not hashes.")
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=MODELS_DIR, help="output folder (default: models/)")
    ap.add_argument("--only", help="comma-separated model ids: write only these, keep every other file")
    args = ap.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if "SOURCE_DATE_EPOCH" in os.environ:
        today = datetime.datetime.fromtimestamp(int(os.environ["SOURCE_DATE_EPOCH"]), datetime.timezone.utc).date()
    else:
        today = datetime.date.today()
    today = today.isoformat()
    previous_path = out / "metrics.json"
    previous = json.loads(previous_path.read_text()) if previous_path.exists() else None
    only = None
    if args.only:
        only = {s.strip() for s in args.only.split(",") if s.strip()}
        known = {spec[0] for name in DATASETS for spec in member_specs(name) + candidate_specs(name)}
        if only - known:
            raise SystemExit(f"--only: unknown model id(s) {', '.join(sorted(only - known))}; known: {', '.join(sorted(known))}")
        if previous is None:
            raise SystemExit(f"--only needs the metrics.json of an earlier full run in {out}")

    t0 = time.time()
    metrics = {
        "generatedBy": "models/train/train.py",
        "trainedOn": today,
        "versions": {"python": platform.python_version(), "scikit-learn": sklearn.__version__,
                     "numpy": np.__version__, "torch": torch.__version__, "onnx": onnx.__version__},
        "datasets": {}, "models": [], "ensembles": [],
    }
    for name in DATASETS:
        print(f"{name}:", flush=True)
        info, members, ens = train_dataset(name, out, today, only, previous)
        metrics["datasets"][name] = info
        metrics["models"] += members
        metrics["ensembles"].append(ens)
    # Models added with `fanout models add` are not trained here: keep their entries as they are.
    if previous:
        trained = {m["id"] for m in metrics["models"]}
        metrics["models"] += [m for m in previous.get("models", [])
                              if m.get("addedBy") and m["id"] not in trained]
    # The date the newest file was written: a run that changes nothing keeps the old date.
    metrics["trainedOn"] = max(m["trainedOn"] for m in metrics["models"] if m.get("trainedOn"))
    write_json(out / "metrics.json", metrics)
    (out / "MODEL_CARD.md").write_text(model_card(metrics))
    print(f"done in {time.time() - t0:.1f} s -> {out}")


if __name__ == "__main__":
    sys.exit(main())
