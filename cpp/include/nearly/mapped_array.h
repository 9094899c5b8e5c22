// The big arrays of an index (inverted lists, flat vectors and codes): a
// std::vector of its own, or a view of elements that live in a file mapped
// read-only (read_index with IO_FLAG_MMAP), the mapping kept alive by the
// array. Reads look like a vector's; any write first copies a view into a
// vector of its own (a mapped index is read-only, so searches never do).
#pragma once
#include <cstddef>
#include <memory>
#include <vector>

namespace nearly {

template <class T, class Alloc = std::allocator<T>>
class MappedArray {
   public:
    using value_type = T;
    using Vector = std::vector<T, Alloc>;

    MappedArray() = default;
    MappedArray(Vector&& v) : own_(std::move(v)) {}  // NOLINT: a vector converts
    MappedArray& operator=(Vector&& v) {
        drop_view();
        own_ = std::move(v);
        return *this;
    }

    // Views n elements at p, which stay valid while keep is held.
    void view(const T* p, size_t n, std::shared_ptr<const void> keep) {
        own_ = Vector();
        view_ = p;
        n_ = n;
        keep_ = std::move(keep);
    }
    bool mapped() const { return view_ != nullptr; }

    const T* data() const { return view_ ? view_ : own_.data(); }
    size_t size() const { return view_ ? n_ : own_.size(); }
    bool empty() const { return size() == 0; }
    const T& operator[](size_t i) const { return data()[i]; }
    const T* begin() const { return data(); }
    const T* end() const { return data() + size(); }

    // Writes: the array becomes its own first.
    Vector& vec() {
        if (view_) {
            Vector copy(view_, view_ + n_);
            drop_view();
            own_ = std::move(copy);
        }
        return own_;
    }
    T* data() { return vec().data(); }
    T& operator[](size_t i) { return vec()[i]; }
    void resize(size_t n) { vec().resize(n); }
    void push_back(const T& v) { vec().push_back(v); }
    template <class It>
    void append(It first, It last) {
        vec().insert(vec().end(), first, last);
    }
    void clear() {
        drop_view();
        own_.clear();
    }

   private:
    void drop_view() {
        view_ = nullptr;
        n_ = 0;
        keep_.reset();
    }
    Vector own_;
    const T* view_ = nullptr;
    size_t n_ = 0;
    std::shared_ptr<const void> keep_;
};

}  // namespace nearly
