#include <pybind11/pybind11.h>

#include "arrays.h"
#include "nearly/io.h"

namespace nearly_py {

using namespace nearly;

namespace {
std::string path_of(py::handle p) {
    py::object fs = py::module_::import("os").attr("fspath");
    try {
        return py::cast<std::string>(fs(p));
    } catch (const py::error_already_set&) {
        throw InvalidArgument("the file name must be a str or os.PathLike");
    }
}
}  // namespace

void bind_io(py::module_& m) {
    m.def("write_index", [](const Index& index, py::handle path, int io_flags) {
        std::string p = path_of(path);
        py::gil_scoped_release release;
        write_index(index, p, io_flags);
    }, py::arg("index"), py::arg("fname"), py::arg("io_flags") = 0);
    // faiss's IO_FLAG_SKIP_STORAGE, for write_index / serialize_index: a
    // graph index (IndexHNSWFlat and its SQ8 / fp16 / bf16, Cagra, Panorama
    // kinds) written as its links alone; read back, it has no storage
    // (searches raise) until `index.storage = ...` gives the vectors back.
    m.attr("IO_FLAG_SKIP_STORAGE") = 1;
    // faiss's flag values. Both make the index read-only; IO_FLAG_MMAP also
    // maps the file and uses the flat vectors and inverted lists in place.
    // IO_FLAG_MMAP_IFC (faiss: map the flat codes) maps like IO_FLAG_MMAP.
    // IO_FLAG_SKIP_PRECOMPUTE_TABLE: an IVFPQ's precomputed table and a
    // residual coarse quantizer's beam tables are not built at load (the
    // quantizer then searches exhaustively, as faiss's). PQ_SKIP_SDC_TABLE
    // changes nothing: nearly builds no SDC table at load.
    m.attr("IO_FLAG_READ_ONLY") = 2;
    m.attr("IO_FLAG_MMAP") = 0x646f0008;
    m.attr("IO_FLAG_MMAP_IFC") = 512;
    m.attr("IO_FLAG_SKIP_PRECOMPUTE_TABLE") = 16;
    m.attr("IO_FLAG_PQ_SKIP_SDC_TABLE") = 32;
    // IO_FLAG_ONDISK_SAME_DIR: lists kept in a file of their own
    // (OnDiskInvertedLists) are looked for beside the index file, under the
    // name the index recorded (both files moved together).
    m.attr("IO_FLAG_ONDISK_SAME_DIR") = 4;
    m.def("read_index", [](py::handle path, int io_flags) {
        std::string p = path_of(path);
        bool ro = (io_flags & (2 | 8)) != 0;
        bool mapped = (io_flags & 0x646f0000) == 0x646f0000 || (io_flags & 512) != 0;
        bool same_dir = (io_flags & 4) != 0;
        bool skip_tables = (io_flags & 16) != 0;
        py::gil_scoped_release release;
        return mapped ? read_index_mapped(p, same_dir, skip_tables) : read_index(p, ro, same_dir, skip_tables);
    }, py::arg("fname"), py::arg("io_flags") = 0);
    m.def("serialize_index", [](const Index& index, int io_flags) {
        std::vector<uint8_t> bytes;
        {
            py::gil_scoped_release release;
            bytes = serialize_index(index, io_flags);
        }
        return bytes_array(std::move(bytes));
    }, py::arg("index"), py::arg("io_flags") = 0, "The index as a uint8 numpy array (the bytes write_index writes).");
    m.def("deserialize_index", [](py::handle data, int io_flags) {
        ByteArray a = as_bytes(data);
        py::gil_scoped_release release;
        return deserialize_index(a.data(), a.shape(0), false, (io_flags & 16) != 0);
    }, py::arg("data"), py::arg("io_flags") = 0);
}

}  // namespace nearly_py
