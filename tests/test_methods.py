"""The method protocol, the registry's three ways in, and the baselines on planted problems."""

import copy
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

import structure_bench as sb
import structure_bench.sae as sae_module
from structure_bench.methods import checked_outputs, registry
from structure_bench.structures import Directions, Subspaces

BASELINES = ["pca", "nmf", "ica", "sparse-coding", "relu-sae", "topk-sae", "batchtopk-sae", "matryoshka-sae", "oracle", "random"]
SAES = ["relu-sae", "topk-sae", "batchtopk-sae", "matryoshka-sae"]


def matched_cos(decoder: np.ndarray, truth: np.ndarray) -> float:
    """Hungarian-matched mean |cos| between decoder rows and true unit rows."""
    rows = decoder / np.linalg.norm(decoder, axis=1, keepdims=True)
    cos = np.abs(truth @ rows.T)
    i, j = linear_sum_assignment(-cos)
    return float(cos[i, j].mean())


@pytest.fixture(scope="module")
def planted() -> tuple[np.ndarray, np.ndarray]:
    """X [4000, 32] = sparse non-negative codes (mean L0 3) times 48 random unit directions."""
    rng = np.random.default_rng(0)
    G = rng.normal(size=(48, 32))
    G /= np.linalg.norm(G, axis=1, keepdims=True)
    A = rng.exponential(size=(4000, 48)) * (rng.random((4000, 48)) < 3 / 48)
    return (A @ G).astype(np.float32), G


@pytest.mark.parametrize("name", SAES[:3])
def test_sae_recovers_planted_dictionary(name, planted) -> None:
    X, G = planted
    sae = sb.get_method(name)(n_latents=48, l0_target=3, seed=0).fit(X)
    assert_recovers(sae, X, G)


def test_matryoshka_recovers_planted_dictionary_in_its_outer_latents(planted) -> None:
    # Nested prefixes must reconstruct on their own, so on flat, equally frequent features the
    # inner latents hedge into mixtures (Chanin et al. 2025, arXiv 2505.11756): at width 48 the
    # match is about 0.73. With an inner half plus an outer half of width 48 each, the outer
    # latents recover every feature at the true L0.
    X, G = planted
    sae = sb.get_method("matryoshka-sae")(n_latents=96, l0_target=3, seed=0, prefix_fractions=(0.5, 1.0)).fit(X)
    assert_recovers(sae, X, G)


def assert_recovers(sae, X: np.ndarray, G: np.ndarray) -> None:
    Z = sae.encode(X)
    assert matched_cos(sae.decoder_, G) >= 0.9
    assert 2 <= (Z > 0).sum(axis=1).mean() <= 4.5
    assert np.all(Z >= 0)


def test_pca_spans_planted_subspace() -> None:
    rng = np.random.default_rng(1)
    basis = np.linalg.qr(rng.normal(size=(20, 5)))[0].T  # [5, 20] orthonormal
    X = rng.normal(size=(500, 5)) @ basis + 3.0
    pca = sb.get_method("pca")(n_latents=5, seed=0).fit(X)
    # Projecting the true basis onto the learned rows loses nothing.
    np.testing.assert_allclose(np.linalg.norm(basis @ pca.decoder_.T, axis=1), 1.0, atol=1e-8)
    _, X_hat, _, _ = checked_outputs(pca, "pca", X)
    np.testing.assert_allclose(X_hat, X, atol=1e-8)


def test_subnormals_are_flushed_inside_the_block_and_the_mode_restored_after() -> None:
    """Inside the block a float32 subnormal reads as 0 (DAZ) and products underflow to 0 (FTZ);
    outside it, and after an exception in it, arithmetic is IEEE again; a block inside another
    leaves the outer one flushing (NMF's and the SAEs' fits may run inside a caller's block)."""
    from structure_bench.numerics import flushed_subnormals

    tiny = np.array([1e-41], dtype=np.float32)  # subnormal: below float32's smallest normal 1.2e-38
    one = np.ones((1, 1), dtype=np.float32)
    assert (tiny @ one)[0] != 0
    with flushed_subnormals():
        assert (tiny @ one)[0] == 0 and (np.float32(1e-30) * np.float32(1e-10)) == 0
        with flushed_subnormals():
            pass
        assert (tiny @ one)[0] == 0
    with pytest.raises(RuntimeError), flushed_subnormals():
        raise RuntimeError
    assert (tiny @ one)[0] != 0


def test_nmf_recovers_a_planted_nonnegative_dictionary() -> None:
    """Sparse non-negative codes of 8 sparse non-negative atoms (an identifiable NMF): HALS finds
    the atoms to |cos| 0.99 and encodes new samples to FVU under 1e-3; random atoms score far lower."""
    rng = np.random.default_rng(0)
    atoms = rng.uniform(size=(8, 24)) * (rng.uniform(size=(8, 24)) < 0.4)
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    codes = rng.exponential(size=(1200, 8)) * (rng.uniform(size=(1200, 8)) < 0.25)
    X = codes @ atoms
    nmf = sb.get_method("nmf")(n_latents=8, seed=0).fit(X[:1000])
    assert nmf.training_["converged"] and nmf.training_["final_loss"] < 1e-3 and nmf.training_["dead_fraction"] == 0
    assert matched_cos(nmf.decoder_, atoms) > 0.99
    _, X_hat, _, _ = checked_outputs(nmf, "nmf", X[1000:])
    assert ((X[1000:] - X_hat) ** 2).sum() / ((X[1000:] - X[1000:].mean(axis=0)) ** 2).sum() < 1e-3
    assert matched_cos(np.abs(rng.normal(size=(8, 24))), atoms) < 0.9
    # Training samples keep their fitted codes (the fit's own error); new samples in the same call
    # are swept as if encoded alone.
    train, train_codes = X[:1000], nmf.encode(X[:1000])
    fitted = nmf.train_codes_.T.double().numpy()
    assert (train_codes == fitted).all(axis=1).mean() > 0.85  # the rest: copies of another sample (X has 110 zero rows)
    train_error = ((train - train_codes @ nmf.decoder_) ** 2).sum() / ((train - train.mean(axis=0)) ** 2).sum()
    assert train_error == pytest.approx(nmf.training_["final_loss"], rel=1e-2)
    mixed = nmf.encode(np.concatenate([X[1000:], X[:10]]))
    np.testing.assert_array_equal(mixed[:200], nmf.encode(X[1000:]))
    np.testing.assert_array_equal(mixed[200:], train_codes[:10])


def test_hals_sweep_sets_each_row_to_its_minimiser_given_the_others() -> None:
    """The grouped sweep (a matrix product per group of rows, rank-1 updates within it) is the
    row-by-row Gauss-Seidel pass, over several groups and column blocks, a zero row skipped; the
    last row swept is the exact minimiser given the others."""
    import structure_bench_baselines.linear as linear

    rng = np.random.default_rng(0)
    G = torch.from_numpy(rng.uniform(size=(150, 40)).astype(np.float64))
    G[7] = 0.0  # a zero atom: B[7, 7] = 0, its row stays
    Y = torch.from_numpy(rng.uniform(size=(40, 90)))
    A, B = G @ Y, G @ G.T
    start = torch.from_numpy(rng.uniform(size=(150, 90)))
    expected = start.clone()
    for j in range(150):
        if B[j, j] > 0:
            expected[j] = (expected[j] + (A[j] - B[j] @ expected) / B[j, j]).clamp_min(0)
    got = start.clone()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(linear, "_HALS_BLOCK_BYTES", 8 * 150 * 32)  # column blocks of 64 samples
        linear._hals_sweep(got, A, B)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-12)
    assert torch.equal(got[7], start[7])
    last = 149
    torch.testing.assert_close((got[last] + (A[last] - B[last] @ got) / B[last, last]).clamp_min(0), got[last])
    assert not torch.allclose(got, start)
def test_nmf_rejects_negative_sites() -> None:
    X = np.random.default_rng(0).normal(size=(50, 6))
    with pytest.raises(sb.MethodError, match="nmf needs non-negative"):
        sb.get_method("nmf")(n_latents=3).fit(X)


@pytest.mark.parametrize("name", [b for b in BASELINES if b not in SAES])
def test_baselines_pass_check_method(name) -> None:
    sb.check_method(sb.get_method(name))


@pytest.mark.parametrize("name", SAES)
def test_saes_pass_check_method(name) -> None:
    cls = sb.get_method(name)
    sb.check_method(lambda **kw: cls(**kw, max_steps=200))


def test_oracle_reconstructs_with_the_true_dictionary(planted) -> None:
    X, _ = planted
    standard = Directions("neurons", np.eye(32))
    oracle = sb.get_method("oracle")(n_latents=32, l0_target=3).fit(X, truth=standard)
    Z, X_hat, decoder, bias = checked_outputs(oracle, "oracle", X)
    np.testing.assert_allclose(Z, X, atol=1e-5)  # standard basis: codes = X, bias 0
    np.testing.assert_allclose(bias, 0.0, atol=1e-6)
    planes = Subspaces("planes", [np.eye(32)[:2], np.eye(32)[2:4]])
    inside = X.copy()
    inside[:, 4:] = 1.5  # a constant offset outside the planes: the decoder bias carries it
    oracle = sb.get_method("oracle")(n_latents=4).fit(inside, truth=planes)
    np.testing.assert_allclose(checked_outputs(oracle, "oracle", inside)[1], inside, atol=1e-5)


def test_oracle_overcomplete_uses_sparse_codes(planted) -> None:
    X, G = planted
    oracle = sb.get_method("oracle")(n_latents=48, l0_target=3).fit(X, truth=Directions("g", G))
    Z = checked_outputs(oracle, "oracle", X)[0]
    assert (np.count_nonzero(Z, axis=1) <= 3).all()
    assert matched_cos(oracle.decoder_, G) == pytest.approx(1.0)


def test_random_is_seeded_and_topk_when_overcomplete(planted) -> None:
    X, _ = planted
    first = sb.get_method("random")(n_latents=64, l0_target=4, seed=3).fit(X)
    again = sb.get_method("random")(n_latents=64, l0_target=4, seed=3).fit(X)
    np.testing.assert_array_equal(first.decoder_, again.decoder_)
    np.testing.assert_allclose(np.linalg.norm(first.decoder_, axis=1), 1.0)
    assert (np.count_nonzero(first.encode(X), axis=1) == 4).all()


def test_sae_fit_is_deterministic_for_a_seed(planted) -> None:
    X, _ = planted
    fits = [sb.get_method("topk-sae")(n_latents=16, l0_target=2, seed=s, max_steps=100).fit(X) for s in (5, 5, 6)]
    np.testing.assert_array_equal(fits[0].decoder_, fits[1].decoder_)
    assert not np.array_equal(fits[0].decoder_, fits[2].decoder_)


def _training_gradients(sae, x, sparse: bool, monkeypatch) -> list[torch.Tensor]:
    """Gradients of one training step's loss (sparse gathered path or dense masked-matmul path)."""
    monkeypatch.setattr(sae_module, "_SPARSE_DENSITY", 1.0 if sparse else -1.0)
    loss = sae.loss(sae._forward(x))
    parameters = [sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec]
    return list(torch.autograd.grad(loss, parameters))


@pytest.mark.parametrize("name", SAES)
def test_sparse_training_step_has_the_dense_gradients(name, planted, monkeypatch) -> None:
    # The sparse path's hand-written backward (encoder and decoder gradients summed latent by
    # latent) must equal autograd through the dense masked matmuls, dead-latent loss included.
    X, _ = planted
    sae = sb.get_method(name)(n_latents=64, l0_target=3, seed=0)
    data = torch.from_numpy(X[:128])
    sae._initialise(data, torch.Generator().manual_seed(0))
    sae.start_fit(data)
    sae._samples_since_fired[::3] = sae.dead_after + 1  # a third of the latents dead: the auxiliary loss is on
    states = [copy.deepcopy(sae) for _ in range(2)]  # the ReLU SAE's loss updates its L1 coefficient
    sparse = _training_gradients(states[0], data, True, monkeypatch)
    dense = _training_gradients(states[1], data, False, monkeypatch)
    for got, want in zip(sparse, dense, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_sparse_codes_gradients_match_the_dense_formula() -> None:
    # select + decode_codes against (x - b_dec) @ W_enc.T + b_enc masked, then z @ W_dec, for an
    # arbitrary loss on both the reconstructions and the codes themselves.
    sae = sb.get_method("topk-sae")(n_latents=40, l0_target=4, seed=0)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(24, 12, generator=generator)
    sae._initialise(x, generator)
    pre = sae._preactivations(x).detach()
    rows, cols = sae.active_entries(pre)
    target = torch.randn(24, 12, generator=generator)
    parameters = [sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec]

    codes = sae.select(x, pre, rows, cols)
    sparse_loss = (sae.decode_codes(codes, len(x)) * target).sum() + codes.values.pow(3).sum()
    gate = torch.zeros_like(pre)
    gate[rows, cols] = 1.0
    z = sae._preactivations(x) * gate
    dense_loss = ((z @ sae.W_dec + sae.b_dec) * target).sum() + z.pow(3).sum()

    torch.testing.assert_close(sparse_loss, dense_loss)
    sparse, dense = torch.autograd.grad(sparse_loss, parameters), torch.autograd.grad(dense_loss, parameters)
    for got, want in zip(sparse, dense, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("k", [1, 3, 20, 64])
def test_batchtopk_keeps_the_batch_top_k_positive_entries(k) -> None:
    """BatchTopK's training entries, chosen among the positive ones, are what a top-k over the
    whole flattened batch keeps (row-major), and its threshold follows their smallest."""
    generator = torch.Generator().manual_seed(k)
    pre = torch.randn(48, 64, generator=generator) - 0.8  # fewer and more than k * 48 positive
    for shift in (0.0, 1.5):
        batch_top = sb.get_method("batchtopk-sae")(n_latents=64, l0_target=k)
        batch_top.start_fit(pre)
        values, index = (pre + shift).flatten().topk(k * len(pre))
        dense = torch.zeros(pre.numel(), dtype=torch.bool).scatter_(0, index, values > 0).view_as(pre)
        assert torch.equal(torch.stack(batch_top.active_entries(pre + shift)), torch.stack(dense.nonzero(as_tuple=True)))
        assert batch_top.threshold_ == pytest.approx(float(values[values > 0].min()))
        codes = batch_top.activation(pre + shift, training=True)
        assert torch.equal(codes != 0, dense) and torch.equal(codes[dense], (pre + shift)[dense])


@pytest.mark.parametrize(("n", "k"), [(64, 3), (256, 3), (256, 5), (512, 12), (2048, 3), (2048, 32), (300, 300)])
def test_top_k_keeps_each_rows_k_largest_entries_on_either_route(n, k) -> None:
    """top_k (torch's top-k or numpy's introselect, by shape) keeps what torch's top-k keeps: the
    same values (indices may differ only at ties), gathered from pre with their gradient."""
    pre = torch.randn(256, n, generator=torch.Generator().manual_seed(n + k), requires_grad=True)
    values, cols = sae_module.top_k(pre, k)
    want, _ = pre.topk(k, dim=1, sorted=False)
    assert values.shape == cols.shape == (256, k) and cols.dtype == torch.int64
    assert torch.equal(values.sort(dim=1).values, want.sort(dim=1).values)
    assert torch.equal(values, pre.gather(1, cols))
    (grad,) = torch.autograd.grad(values.sum(), pre)
    assert torch.equal(grad.nonzero()[:, 1].view(256, k).sort(dim=1).values, cols.sort(dim=1).values)


@pytest.mark.parametrize("n_latents", [2048, 2**15 + 1])
def test_latent_runs_are_a_stable_sort_by_latent(n_latents) -> None:
    # numpy's 16-bit radix sort up to 2**15 latents, torch's stable sort beyond: the same order.
    cols = torch.randint(0, n_latents, (8192,), generator=torch.Generator().manual_seed(0))
    order, starts = sae_module._latent_runs(cols, n_latents)
    assert order.dtype == torch.int64 and torch.equal(order, torch.argsort(cols, stable=True))
    assert torch.equal(starts, torch.bincount(cols, minlength=n_latents).cumsum(0) - torch.bincount(cols, minlength=n_latents))


@pytest.mark.parametrize("kind", ["bool", "float", "transposed"])
def test_entries_are_the_nonzeros_row_major(kind) -> None:
    generator = torch.Generator().manual_seed(0)
    codes = torch.randn(40, 30, generator=generator).relu()
    codes[7] = 0.0  # an empty row
    codes = {"bool": codes > 0, "float": codes, "transposed": codes.T}[kind]
    rows, cols = sae_module.entries(codes)
    want = codes.nonzero(as_tuple=True)
    assert rows.dtype == cols.dtype == torch.int64
    assert torch.equal(rows, want[0]) and torch.equal(cols, want[1])
    assert torch.equal(sae_module.values_at(codes.float(), rows, cols), codes.float()[rows, cols])


@pytest.mark.parametrize("shift", [-3.0, -1.0, 0.5])  # no row crowded, some, every row
def test_largest_positive_keeps_each_rows_k_largest_positive_allowed_entries(shift) -> None:
    generator = torch.Generator().manual_seed(1)
    pre = torch.randn(64, 200, generator=generator) + shift
    columns = torch.randperm(200, generator=generator)[:120].sort().values
    k = 10
    pre[3, columns[:k + 2]] = 5.0  # a tie at row 3's k-th largest: the tied entries all stay
    want = torch.zeros_like(pre, dtype=torch.bool)
    allowed = pre[:, columns]
    kth = allowed.topk(k, dim=1).values[:, -1:]
    want[:, columns] = (allowed > 0) & (allowed >= kth)
    rows, cols = sae_module._largest_positive(pre, columns, k)
    assert torch.equal(torch.stack([rows, cols]), torch.stack(want.nonzero(as_tuple=True)))
    assert (pre[rows, cols] > 0).all() and (want.sum(dim=1)[3] == k + 2)
    crowded = int(((allowed > 0).sum(dim=1) > k)[torch.arange(64) != 3].sum())  # besides the tied row
    assert crowded == {-3.0: 0, 0.5: 63}.get(shift, crowded) and (shift != -1.0 or 0 < crowded < 63)


@pytest.mark.parametrize("kernel", ["onednn", "addmm"])  # this build's oneDNN op, and builds without it
def test_linear_is_the_affine_map_and_records_through_addmm(kernel, monkeypatch) -> None:
    if kernel == "addmm":
        monkeypatch.setattr(sae_module, "_ONEDNN_LINEAR", None)
    elif sae_module._ONEDNN_LINEAR is None:
        pytest.skip("this torch build has no oneDNN linear; the addmm case covers it")
    generator = torch.Generator().manual_seed(3)
    x, weight, bias = torch.randn(70, 192, generator=generator), torch.randn(96, 192, generator=generator), torch.randn(96, generator=generator)
    assert weight.numel() >= sae_module._ONEDNN_MIN_WEIGHTS
    exact = x.double() @ weight.double().T + bias.double()
    for w in (weight, weight.T.contiguous().T):  # the decoder's transpose: strided weights too
        with torch.no_grad():
            out = sae_module.linear(x, w, bias)
        assert out.shape == (70, 96) and not out.requires_grad
        torch.testing.assert_close(out.double(), exact, rtol=0, atol=1e-4)
    # Where autograd records, exactly torch.addmm, with its gradients.
    weight.requires_grad_()
    out = sae_module.linear(x, weight, bias)
    assert torch.equal(out, torch.addmm(bias, x, weight.T))
    out.sum().backward()
    torch.testing.assert_close(weight.grad, x.sum(dim=0).expand(96, 192))


@pytest.mark.parametrize("k", [2, 40])  # sparse codes (gathered decoder rows) and dense ones (a matmul)
def test_decode_of_dense_codes_is_the_matmul(k) -> None:
    sae = sb.get_method("topk-sae")(n_latents=64, l0_target=k, seed=0)
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(50, 12, generator=generator)
    sae._initialise(x, generator)
    with torch.no_grad():
        codes = sae.activation(sae._preactivations(x), training=False)
        torch.testing.assert_close(sae._decode(codes), codes @ sae.W_dec + sae.b_dec)


def test_matryoshka_loss_is_the_mean_error_of_its_prefixes(planted) -> None:
    # Its one grouped decode against each prefix decoded densely: z[:, :end] @ W_dec[:end] + b_dec.
    X, _ = planted
    sae = sb.get_method("matryoshka-sae")(n_latents=64, l0_target=3, seed=0, aux_coeff=0.0)
    data = torch.from_numpy(X[:128])
    sae._initialise(data, torch.Generator().manual_seed(0))
    sae.start_fit(data)
    parameters = [sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec]
    loss = sae.loss(sae._forward(data))
    gate = torch.zeros(len(data), 64)
    gate[sae.active_entries(sae._preactivations(data).detach())] = 1.0
    z = sae._preactivations(data) * gate
    errors = [(z[:, :end] @ sae.W_dec[:end] + sae.b_dec - data).pow(2).sum(dim=1).mean() for end in (8, 16, 32, 64)]
    reference = torch.stack(errors).mean()
    torch.testing.assert_close(loss, reference)
    got, want = torch.autograd.grad(loss, parameters), torch.autograd.grad(reference, parameters)
    for ours, theirs in zip(got, want, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)


class _Broken(sb.Method):
    """A method whose outputs break the protocol in a chosen way."""

    def __init__(self, n_latents: int, l0_target: int | None = None, seed: int = 0, fault: str = "nan") -> None:
        super().__init__(n_latents, l0_target, seed)
        self.fault = fault

    def fit(self, X):
        self.decoder_ = np.ones((self.n_latents, X.shape[1]))
        return self

    def encode(self, X):
        Z = np.zeros((len(X), self.n_latents))
        if self.fault == "nan":
            Z[0, 0] = np.nan
        return Z if self.fault != "width" else Z[:, :-1]


@pytest.mark.parametrize(("fault", "message"), [("nan", "NaN/inf"), ("width", "shape")])
def test_broken_outputs_raise_method_error_naming_the_method(fault, message) -> None:
    X = np.ones((10, 4))
    method = _Broken(n_latents=3, fault=fault).fit(X)
    with pytest.raises(sb.MethodError, match=f"method broken-one: .*{message}"):
        checked_outputs(method, "broken-one", X)


class _Strict(_Broken):
    """A method whose range check refuses its own default."""

    def validate_params(self) -> None:
        if self.fault == "nan":
            raise sb.MethodError("_Strict: fault must not be 'nan'")


def test_check_method_holds_validate_params_to_the_defaults() -> None:
    with pytest.raises(sb.MethodError, match=r"method _Strict: validate_params refuses the defaults \(_Strict: fault"):
        sb.check_method(_Strict)


@sb.register_method("test-pca-alias")
class _DecoratedPCA(sb.get_method("pca")):
    """PCA registered by the decorator in a test file."""


def _run_like_the_runner(spec: str) -> np.ndarray:
    X = np.abs(np.random.default_rng(0).normal(size=(64, 6)))
    method = sb.get_method(spec)(n_latents=3, l0_target=1, seed=0).fit(X)
    return checked_outputs(method, spec, X)[1]


def test_decorator_registration() -> None:
    assert sb.get_method("test-pca-alias") is _DecoratedPCA
    assert "test-pca-alias" in set(sb.list_methods()["name"])
    _run_like_the_runner("test-pca-alias")


def test_module_colon_class_registration() -> None:
    assert sb.get_method("structure_bench_baselines.linear:PCAMethod") is sb.get_method("pca")
    _run_like_the_runner("structure_bench_baselines.linear:PCAMethod")


def test_entry_point_registration(tmp_path, monkeypatch) -> None:
    source = tmp_path / "src"
    (source / "throwaway_method").mkdir(parents=True)
    (source / "throwaway_method" / "__init__.py").write_text(
        textwrap.dedent(
            """
            import numpy as np
            from structure_bench import Method

            class MeanDictionary(Method):
                \"\"\"Every latent is the mean direction.\"\"\"

                def fit(self, X):
                    mean = np.asarray(X).mean(axis=0)
                    self.decoder_ = np.tile(mean / np.linalg.norm(mean), (self.n_latents, 1))
                    return self

                def encode(self, X):
                    return np.tile(np.asarray(X) @ self.decoder_[0], (self.n_latents, 1)).T / self.n_latents
            """
        )
    )
    (source / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [build-system]
            requires = ["setuptools>=68"]
            build-backend = "setuptools.build_meta"
            [project]
            name = "throwaway-method"
            version = "0.0.1"
            [project.entry-points."structure_bench.methods"]
            throwaway-mean = "throwaway_method:MeanDictionary"
            """
        )
    )
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target), str(source)],
        check=True,
    )
    monkeypatch.syspath_prepend(str(target))
    monkeypatch.setattr(registry.METHODS, "_entry_points", None)
    assert "throwaway-mean" in set(sb.list_methods()["name"])
    _run_like_the_runner("throwaway-mean")
    monkeypatch.delitem(registry.METHODS.local, "throwaway-mean")


def test_list_methods_shows_baselines_with_parameters() -> None:
    table = sb.list_methods().set_index("name")
    assert set(BASELINES) <= set(table.index)
    assert "max_steps=20000" in table.loc["topk-sae", "parameters"]
    assert "prefix_fractions" in table.loc["matryoshka-sae", "parameters"]


def test_unknown_method_suggests_the_closest() -> None:
    with pytest.raises(sb.UnknownMethodError, match="did you mean 'topk-sae'"):
        sb.get_method("topk-sea")


def test_matryoshka_takes_the_shared_loops_parameters_and_defaults() -> None:
    """Its constructor adds prefix_fractions and passes the rest on: the registry lists the shared
    loop's parameters with the loop's own defaults, and a value set on it reaches the loop."""
    loop = registry.method_parameters(sae_module.SparseAutoencoder)
    matryoshka = registry.method_parameters(sb.get_method("matryoshka-sae"))
    assert matryoshka == {**loop, "prefix_fractions": (0.125, 0.25, 0.5, 1.0)}
    sae = sb.get_method("matryoshka-sae")(n_latents=8, l0_target=2, lr=0.02, prefix_fractions=(0.5, 1.0))
    assert (sae.lr, sae.prefix_fractions, sae.max_steps) == (0.02, (0.5, 1.0), loop["max_steps"])
