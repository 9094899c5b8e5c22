"""An IVF index split by centroid (shard_ivf_index_centroids): each shard
holds some of the centroids, under their list numbers (an IndexIDMap2
quantizer), and the entries of its own lists. Checked against the whole
index: the shards together hold its lists entry for entry, searching them
all at nprobe = nlist gives its results, at a smaller nprobe never worse
ones, and vectors routed to the shard of their nearest centroid land where
the whole index puts them."""
import os

import numpy as np
import pytest

import nearly
from _testutil import blobs

D, NB, NLIST = 32, 3000, 24

FACTORIES = ["IVF24,Flat", "IVF24,PQ8", "IVF24,SQ8", "IVF24,PQ16x4fs", "IVF24,RaBitQ", "IVF24,FlatPanorama4"]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    return blobs(rng, NB, D, centers=40), blobs(rng, 50, D, centers=40)


def _trained(factory, xb, metric=nearly.METRIC_L2):
    index = nearly.index_factory(D, factory, metric)
    index.train(xb)
    return index


def _read_shards(template, n):
    shards = [nearly.read_index(template % s) for s in range(n)]
    for s in range(n):
        os.remove(template % s)
    return shards


def _lists(index):
    return {l: np.sort(index.invlists.get_ids(l)) for l in range(index.nlist)}


@pytest.mark.parametrize("factory", FACTORIES)
def test_shards_hold_the_whole_index(tmp_path, data, factory):
    xb, xq = data
    index = _trained(factory, xb)
    if factory.endswith("PQ8"):
        index.use_precomputed_table = 1  # each shard's table comes from its own quantizer
    index.add(xb)
    template = str(tmp_path / "shard.%d.index")
    nearly.shard_ivf_index_centroids(index, 3, template, None, True)
    shards = _read_shards(template, 3)

    whole = _lists(index)
    for s, shard in enumerate(shards):
        assert shard.is_trained and shard.nlist == NLIST
        assert isinstance(shard.quantizer, nearly.IndexIDMap2)
        mine = [l for l in range(NLIST) if l % 3 == s]
        np.testing.assert_array_equal(np.sort(nearly.vector_to_array(shard.quantizer.id_map)), mine)
        for l in range(NLIST):
            got = np.sort(shard.invlists.get_ids(l))
            np.testing.assert_array_equal(got, whole[l] if l in mine else [])
            if l in mine:
                np.testing.assert_array_equal(shard.quantizer.reconstruct(l), index.quantizer.reconstruct(l))
        assert shard.ntotal == sum(len(whole[l]) for l in mine)

    # Every list probed: the shards together are the whole index.
    index.nprobe = NLIST
    Dw, Iw = index.search(xq, 10)
    merged = nearly.IndexShards(D, False, False)
    for shard in shards:
        shard.nprobe = NLIST
        merged.add_shard(shard)
    Dm, Im = merged.search(xq, 10)
    np.testing.assert_allclose(Dm, Dw, rtol=1e-5, atol=1e-4)
    assert (Im == Iw).mean() > 0.99  # ties may swap

    # At nprobe p each shard probes its own p nearest lists, a superset of the
    # whole index's p nearest that it holds: the r-th distance is never worse.
    for p in (1, 3):
        index.nprobe = p
        for shard in shards:
            shard.nprobe = p
        Dw, _ = index.search(xq, 10)
        Dm, _ = merged.search(xq, 10)
        assert (Dm <= Dw + 1e-4 * np.maximum(1, np.abs(Dw))).all()


@pytest.mark.parametrize("factory", ["IVF24,Flat", "IVF24,PQ8", "IVF24,SQ8", "IVF24,PQ16x4fs"])
def test_routed_adds_land_where_the_whole_index_puts_them(tmp_path, data, factory):
    xb, _ = data
    index = _trained(factory, xb)
    template = str(tmp_path / "s%d.index")
    nearly.shard_ivf_index_centroids(index, 4, template, lambda i, n: (i * 7) % n, True)
    shards = _read_shards(template, 4)
    owner = np.array([(l * 7) % 4 for l in range(NLIST)])
    assign = index.quantizer.assign(xb, 1).ravel()
    ids = np.arange(NB, dtype=np.int64)
    for s, shard in enumerate(shards):
        mine = owner[assign] == s
        shard.add_with_ids(xb[mine], ids[mine])
    index.add(xb)
    whole = _lists(index)
    for s, shard in enumerate(shards):
        for l in range(NLIST):
            got = np.sort(shard.invlists.get_ids(l))
            np.testing.assert_array_equal(got, whole[l] if owner[l] == s else [])
        # the same codes as the whole index's
        for l in np.flatnonzero(owner == s)[:3]:
            a = index.invlists.get_ids(int(l))
            b = shard.invlists.get_ids(int(l))
            order_a, order_b = np.argsort(a), np.argsort(b)
            ca = np.asarray([index.invlists.get_single_code(int(l), int(j)) for j in order_a])
            cb = np.asarray([shard.invlists.get_single_code(int(l), int(j)) for j in order_b])
            np.testing.assert_array_equal(ca, cb)


def test_a_shard_places_vectors_among_its_own_centroids(tmp_path, data):
    xb, xq = data
    index = _trained("IVF24,Flat", xb, nearly.METRIC_INNER_PRODUCT)
    template = str(tmp_path / "s%d.index")
    nearly.shard_ivf_index_centroids(index, 2, template, None, True)
    shard = _read_shards(template, 2)[1]
    shard.add(xb)
    assert shard.ntotal == NB
    sizes = [shard.invlists.list_size(l) for l in range(NLIST)]
    assert all(sizes[l] == 0 for l in range(0, NLIST, 2)) and sum(sizes) == NB
    shard.nprobe = 100  # more than the 12 lists it holds
    Ds, Is = shard.search(xq, 5)
    ref = nearly.IndexFlatIP(D)
    ref.add(xb)
    Dr, Ir = ref.search(xq, 5)
    np.testing.assert_allclose(Ds, Dr, rtol=1e-5, atol=1e-4)


def test_without_ids_the_centroids_are_numbered_from_zero(tmp_path):
    rng = np.random.default_rng(3)
    xc = rng.random((NLIST, D), dtype=np.float32)
    index = nearly.IndexIVFFlat(nearly.IndexFlatL2(D), D, NLIST)
    index.quantizer.add(xc)
    template = str(tmp_path / "s%d.index")
    nearly.shard_ivf_index_centroids(index, 5, template)
    shards = _read_shards(template, 5)
    for s, shard in enumerate(shards):
        q = shard.quantizer
        assert isinstance(q, nearly.IndexFlatL2)
        np.testing.assert_array_equal(q.reconstruct_n(0, q.ntotal), xc[s::5])
        assert not shard.is_trained  # a plain quantizer holding fewer than nlist centroids places nothing


def test_binary_shards(tmp_path):
    rng = np.random.default_rng(5)
    xb = rng.integers(0, 256, (2000, 8), dtype=np.uint8)
    index = nearly.index_binary_factory(64, "BIVF16")
    index.train(xb)
    index.add(xb)
    template = str(tmp_path / "b%d.index")
    nearly.shard_binary_ivf_index_centroids(index, 3, template, None, True)
    shards = [nearly.read_index_binary(template % s) for s in range(3)]
    assert sum(s.ntotal for s in shards) == index.ntotal
    for s, shard in enumerate(shards):
        assert shard.is_trained and isinstance(shard.quantizer, nearly.IndexBinaryIDMap2)
        for l in range(16):
            want = np.sort(index.get_list_ids(l)) if l % 3 == s else []
            np.testing.assert_array_equal(np.sort(shard.get_list_ids(l)), want)
            if l % 3 == s:
                np.testing.assert_array_equal(shard.quantizer.reconstruct(l), index.quantizer.reconstruct(l))
    index.nprobe = 16
    merged = nearly.IndexBinaryShards(64, False, False)
    for shard in shards:
        shard.nprobe = 16
        merged.add_shard(shard)
    Dw, _ = index.search(xb[:20], 5)
    Dm, _ = merged.search(xb[:20], 5)
    np.testing.assert_array_equal(Dm, Dw)


def test_bad_arguments(tmp_path, data):
    xb, _ = data
    empty = nearly.IndexIVFFlat(nearly.IndexFlatL2(D), D, NLIST)
    with pytest.raises(RuntimeError, match="No centroids"):
        nearly.shard_ivf_index_centroids(empty, 3, str(tmp_path / "s%d"))
    index = _trained("IVF24,Flat", xb)
    with pytest.raises(RuntimeError, match="filename_template"):
        nearly.shard_ivf_index_centroids(index, 3, str(tmp_path / "shard"))
    with pytest.raises(ValueError, match="shard"):
        nearly.shard_ivf_index_centroids(index, 3, str(tmp_path / "s%d"), lambda i, n: n)
    with pytest.raises(ValueError, match="shard_count"):
        nearly.shard_ivf_index_centroids(index, 0, str(tmp_path / "s%d"))
    with pytest.raises(TypeError):
        nearly.shard_ivf_index_centroids(nearly.IndexFlatL2(D), 3, str(tmp_path / "s%d"))
    index.add(xb[:100])
    with pytest.raises(RuntimeError, match="generate_ids"):
        nearly.shard_ivf_index_centroids(index, 3, str(tmp_path / "s%d"), None, False)
    assert not any(p.name.startswith("s") for p in tmp_path.iterdir())


def test_quantizer_ids_must_be_list_numbers(data):
    xb, _ = data
    xc = xb[:NLIST]
    q = nearly.IndexIDMap2(nearly.IndexFlatL2(D))
    q.add_with_ids(xc[:5], np.array([0, 3, 7, 30, 9], dtype=np.int64))  # 30 is no list
    index = nearly.IndexIVFFlat(q, D, NLIST)
    assert not index.is_trained
    with pytest.raises(nearly.InvalidArgumentError, match="IndexIDMap2"):
        index.is_trained = True
    plain = nearly.IndexIDMap(nearly.IndexFlatL2(D))  # no reverse map: cannot find a list's centroid
    plain.add_with_ids(xc[:5], np.arange(5, dtype=np.int64))
    assert not nearly.IndexIVFFlat(plain, D, NLIST).is_trained
    good = nearly.IndexIDMap2(nearly.IndexFlatL2(D))
    good.add_with_ids(xc[:5], np.array([0, 3, 7, 23, 9], dtype=np.int64))
    index = nearly.IndexIVFFlat(good, D, NLIST)
    assert index.is_trained
    index.add(xb)
    assert index.ntotal == NB
    assert {l for l in range(NLIST) if index.invlists.list_size(l)} <= {0, 3, 7, 23, 9}


# ---- IndexShardsIVF: shards by data behind one coarse quantizer ----------------


@pytest.mark.parametrize("factory", ["IVF24,Flat", "IVF24,PQ8", "IVF24,SQ8", "IVF24,PQ16x4fs"])
def test_shards_ivf_search_like_the_whole_index(data, factory):
    xb, xq = data
    whole = _trained(factory, xb)
    template = nearly.clone_index(whole)
    whole.add(xb)
    sharded = nearly.IndexShardsIVF(whole.quantizer, NLIST, False, True)
    for _ in range(3):
        sharded.add_shard(nearly.clone_index(template))
    assert sharded.is_trained
    sharded.add(xb)
    assert sharded.ntotal == NB and [p.ntotal for p in sharded._parts] == [1000, 1000, 1000]
    for p in (1, 4, NLIST):
        whole.nprobe = p
        for part in sharded._parts:
            part.nprobe = p
        Dw, Iw = whole.search(xq, 10)
        Ds, Is = sharded.search(xq, 10)
        np.testing.assert_allclose(Ds, Dw, rtol=1e-5, atol=1e-4)
        assert (Is == Iw).mean() > 0.99  # ties may swap
        Dp, Ip = sharded.search(xq, 10, params=nearly.SearchParametersIVF(nprobe=p))
        np.testing.assert_array_equal(Ip, Is)


def test_shards_ivf_train_and_add_with_ids(data):
    xb, xq = data
    quantizer = nearly.IndexFlatL2(D)
    sharded = nearly.IndexShardsIVF(quantizer, NLIST, True, False)
    for _ in range(3):
        sharded.add_shard(nearly.index_factory(D, "IVF24,PQ8"))
    assert not sharded.is_trained
    sharded.train(xb)
    assert sharded.is_trained and quantizer.ntotal == NLIST
    for part in sharded._parts:  # each shard's own quantizer holds the same centroids
        np.testing.assert_array_equal(part.quantizer.reconstruct_n(0, NLIST), quantizer.reconstruct_n(0, NLIST))
    ids = np.arange(NB, dtype=np.int64) * 10 + 3
    sharded.add_with_ids(xb, ids)
    ref = nearly.IndexIVFPQ(quantizer, D, NLIST, 8, 8)
    ref.pq = sharded._parts[0].pq
    ref.is_trained = True
    ref.add_with_ids(xb, ids)
    for index in (ref, *sharded._parts):
        index.nprobe = 5
    Dr, Ir = ref.search(xq, 10)
    Ds, Is = sharded.search(xq, 10)
    np.testing.assert_allclose(Ds, Dr, rtol=1e-5, atol=1e-4)
    assert (Is == Ir).mean() > 0.99

    # The collection's quantizer decides the probed lists, not the shards' own.
    reordered = quantizer.reconstruct_n(0, NLIST)[::-1].copy()
    quantizer.reset()
    quantizer.add(reordered)
    assert not np.array_equal(sharded.search(xq, 10)[1], Is)


def test_shards_ivf_bad_input(data):
    xb, xq = data
    whole = _trained("IVF24,Flat", xb)
    sharded = nearly.IndexShardsIVF(whole.quantizer, NLIST)
    with pytest.raises(nearly.InvalidArgumentError, match="IndexIVF"):
        sharded.add_shard(nearly.IndexFlatL2(D))
    with pytest.raises(nearly.InvalidArgumentError, match="nlist"):
        sharded.add_shard(nearly.IndexIVFFlat(nearly.IndexFlatL2(D), D, 8))
    with pytest.raises(RuntimeError, match="no shard"):
        sharded.add(xb)
    a, b = nearly.clone_index(whole), nearly.clone_index(whole)
    sharded.add_shard(a)
    sharded.add_shard(b)
    with pytest.raises(RuntimeError, match="ids"):
        sharded.add_with_ids(xb, np.arange(NB))
    sharded.add(xb)
    with pytest.raises(RuntimeError, match="single pass"):
        sharded.add(xb)
    b.nprobe = 3
    with pytest.raises(RuntimeError, match="inconsistent nprobe"):
        sharded.search(xq, 5)
    with pytest.raises(RuntimeError, match="params"):
        sharded.search(xq, 5, params=nearly.SearchParameters())
    with pytest.raises(nearly.InvalidArgumentError):
        sharded.search(xq, 0)
    untrained = nearly.IndexShardsIVF(nearly.IndexFlatL2(D), NLIST, False, False)
    untrained.add_shard(nearly.index_factory(D, "IVF24,Flat"))
    with pytest.raises(RuntimeError, match="train"):
        untrained.add(xb)
