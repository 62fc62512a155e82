#include "sat/io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>

#include "sat/error.hpp"

namespace sat {

namespace {

std::string errno_text(int err) { return std::strerror(err); }

std::string dir_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Removes the temporary file on every exit path unless release() was called after the rename.
class TempFile {
 public:
  explicit TempFile(std::string path) : path_(std::move(path)) {}
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  const std::string& path() const { return path_; }
  int& fd() { return fd_; }
  void release() { path_.clear(); }

 private:
  std::string path_;
  int fd_ = -1;
};

// What `path` is when it exists and is not a regular file ("a directory", "a character device",
// ...); empty when it is a regular file or does not exist. A symbolic link counts as itself: the
// rename would replace the link, not what it points to.
std::string non_regular_kind(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return "";
  if (S_ISREG(st.st_mode)) return "";
  if (S_ISDIR(st.st_mode)) return "a directory";
  if (S_ISCHR(st.st_mode)) return "a character device";
  if (S_ISBLK(st.st_mode)) return "a block device";
  if (S_ISLNK(st.st_mode)) return "a symbolic link";
  if (S_ISFIFO(st.st_mode)) return "a FIFO";
  if (S_ISSOCK(st.st_mode)) return "a socket";
  return "not a regular file";
}

}  // namespace

void atomic_write_file(const std::string& path, std::string_view bytes) {
  if (path.empty()) throw Error("cannot write a file with an empty path");
  auto fail = [&](const std::string& step, int err) -> void {
    throw Error("cannot write '" + path + "': " + step + ": " + errno_text(err));
  };
  // The rename replaces whatever is at `path`: only a regular file may be (a device node, a
  // directory or a link is refused and left as it is).
  auto refuse_non_regular = [&] {
    const std::string kind = non_regular_kind(path);
    if (!kind.empty()) {
      throw Error("cannot write '" + path + "': it is " + kind + ", not a regular file; it was left as it is");
    }
  };
  refuse_non_regular();

  // pid + counter keeps concurrent writers (threads or processes) off each other's temp files;
  // the leading dot keeps a leftover from a hard crash out of casual globbing.
  static std::atomic<uint64_t> counter{0};
  const std::string dir = dir_of(path);
  const std::string base = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  if (base.empty()) throw Error("cannot write '" + path + "': the path names a directory");
  TempFile tmp(dir + "/." + base + ".tmp-" + std::to_string(::getpid()) + "-" +
               std::to_string(counter.fetch_add(1)));

  tmp.fd() = ::open(tmp.path().c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (tmp.fd() < 0) {
    const int err = errno;
    tmp.release();  // nothing was created
    fail("cannot create temporary file '" + tmp.path() + "'", err);
  }

  size_t done = 0;
  while (done < bytes.size()) {
    const size_t chunk = std::min<size_t>(bytes.size() - done, size_t{1} << 30);
    const ssize_t n = ::write(tmp.fd(), bytes.data() + done, chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("writing '" + tmp.path() + "' failed", errno);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(tmp.fd()) != 0) fail("fsync of '" + tmp.path() + "' failed", errno);
  const int fd = tmp.fd();
  tmp.fd() = -1;
  // close() can report a deferred write error (NFS, quotas): it must not be ignored.
  if (::close(fd) != 0) fail("closing '" + tmp.path() + "' failed", errno);

  refuse_non_regular();   // again: something may have appeared there while the data was written
  if (::rename(tmp.path().c_str(), path.c_str()) != 0) {
    fail("renaming '" + tmp.path() + "' over it failed", errno);
  }
  tmp.release();

  // Makes the rename itself durable. Some file systems cannot fsync a directory (EINVAL); the
  // file is complete at the target either way, so only real I/O errors are reported.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    const int rc = ::fsync(dfd);
    const int err = errno;
    ::close(dfd);
    if (rc != 0 && err != EINVAL && err != ENOTSUP && err != EROFS) {
      fail("fsync of directory '" + dir + "' failed", err);
    }
  }
}

std::string read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot read '" + path + "': " + errno_text(errno));
  std::string out;
  struct stat st{};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    throw Error("cannot read '" + path + "': it is a directory");
  }
  if (st.st_size > 0) out.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      throw Error("cannot read '" + path + "': " + errno_text(err));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

uint32_t checksum_crc32(const void* data, size_t n, uint32_t crc) {
  // zlib takes 32-bit lengths: feed it in chunks so multi-GiB buffers work.
  auto* p = static_cast<const Bytef*>(data);
  uLong c = crc;
  while (n > 0) {
    const uInt chunk = static_cast<uInt>(std::min<size_t>(n, UINT_MAX / 2 + 1));
    c = ::crc32(c, p, chunk);
    p += chunk;
    n -= chunk;
  }
  return static_cast<uint32_t>(c);
}

std::string gzip_compress(std::string_view bytes, int level) {
  z_stream zs{};
  // windowBits 15 + 16 selects the gzip wrapper instead of zlib's.
  if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw Error("gzip: cannot initialise the compressor");
  }
  std::string out;
  out.resize(deflateBound(&zs, static_cast<uLong>(bytes.size())) + 32);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  zs.avail_in = static_cast<uInt>(bytes.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  const size_t produced = zs.total_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw Error("gzip: compression failed (zlib error " + std::to_string(rc) + ")");
  out.resize(produced);
  return out;
}

std::string read_maybe_gzip(const std::string& path, size_t max_bytes) {
  // gzopen reads files without a gzip header transparently, so one path serves both forms.
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) {
    const int err = errno;
    throw Error("cannot read '" + path + "': " + (err ? errno_text(err) : "out of memory"));
  }
  gzbuffer(f, 1 << 20);
  std::string out;
  // A known bound (IDX files state their size) saves the reallocations of a growing buffer, but
  // the bound comes from the file's header: a 16-byte file may claim a gigabyte. The file's size
  // on disk caps the reservation (a compressed file then grows its buffer as it inflates).
  struct stat st {};
  const size_t on_disk = ::stat(path.c_str(), &st) == 0 && st.st_size > 0 ? static_cast<size_t>(st.st_size) : 0;
  out.reserve(std::min(max_bytes, on_disk));
  const size_t chunk = size_t{1} << 20;
  while (out.size() < max_bytes) {
    const size_t want = std::min(chunk, max_bytes - out.size());
    const size_t old = out.size();
    out.resize(old + want);
    const int n = gzread(f, out.data() + old, static_cast<unsigned>(want));
    if (n < 0) {
      int zerr = 0;
      const std::string msg = gzerror(f, &zerr);
      gzclose(f);
      throw Error("cannot read '" + path + "': " +
                  (zerr == Z_ERRNO ? errno_text(errno) : "corrupt gzip data (" + msg + ")"));
    }
    out.resize(old + static_cast<size_t>(n));
    if (static_cast<size_t>(n) < want) break;
  }
  int zerr = 0;
  const std::string msg = gzerror(f, &zerr);
  gzclose(f);
  // A gzip stream cut short reads as a short file with Z_BUF_ERROR set.
  if (zerr == Z_BUF_ERROR || (zerr != Z_OK && zerr != Z_STREAM_END)) {
    throw Error("cannot read '" + path + "': the gzip stream is damaged or ends early (" + msg + ")");
  }
  return out;
}

}  // namespace sat
