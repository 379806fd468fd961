package import Foundation
internal import LoyaltyCore

#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif

/// Files only their owner may read: the stores hold password hashes, tokens and personal data.
package enum PrivateFiles {
    /// Creates the database file at `path` readable and writable by its owner alone (0600) before SQLite opens it,
    /// or takes an existing one's group and other permissions away. SQLite gives the write-ahead log and the
    /// shared-memory file the database file's permissions, so they follow.
    package static func prepareDatabase(at path: String) throws {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw LoyaltyError(.unusableStore, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw LoyaltyError(
                .unusableStore, "cannot read the permissions of \(path): \(String(cString: strerror(errno)))")
        }
        if status.st_mode & 0o077 != 0, fchmod(descriptor, 0o600) != 0 {
            throw LoyaltyError(
                .unusableStore, "cannot make \(path) private (0600): \(String(cString: strerror(errno)))")
        }
    }

    /// Creates a new file at `path` with `contents`, readable and writable by its owner alone (0600) from the first
    /// moment; an existing file is an error.
    package static func create(at path: String, contents: Data) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw LoyaltyError(.unusableStore, "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        let written = contents.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written == contents.count, fsync(descriptor) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(path)
            throw LoyaltyError(.unusableStore, "cannot write \(path): \(reason)")
        }
    }

    /// Creates a directory (and its parents) the owner alone may enter (0700); an existing one is left as it is.
    package static func createDirectory(at url: URL) throws {
        guard !FileManager.default.fileExists(atPath: url.path) else { return }
        try FileManager.default.createDirectory(
            at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    /// The permission bits of the file at `path` (the lower nine), or nil if it cannot be read.
    package static func permissions(of path: String) -> Int? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        return Int(status.st_mode & 0o777)
    }
}
