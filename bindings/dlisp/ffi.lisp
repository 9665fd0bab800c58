;;;; ffi.lisp -- CFFI declarations of the public C API (core/include/streamdb.h).
;;;;
;;;; Only what streamdb.h declares is bound here.  The configuration is built
;;;; through the opaque API (streamdb_config_new / streamdb_config_set by name),
;;;; so the layout of struct streamdb_config is not mirrored.  The three result
;;;; structs that have no opaque accessor (doc_info, stats, cache_stats) are
;;;; declared as in the header; all their fields are fixed-size integers.
;;;; The VFS table itself is not mirrored: only the constructors of the two
;;;; built-in backends are bound, and their pointers are passed through.

(in-package #:streamdb)

;;; Return codes
(defconstant +ok+ 0)
(defconstant +done+ 1)
(defconstant +id-size+ 16)
(defconstant +max-path+ 4096)
(defconstant +doc-inline+ 1)

;;; Result structs
(cffi:defcstruct doc-info
  (id :uint8 :count 16)
  (version :uint64)
  (size :uint64)
  (stored-size :uint64)
  (crc32c :uint64)
  (created-ns :uint64)
  (modified-ns :uint64)
  (flags :uint64))

(cffi:defcstruct db-stats
  (page-size :uint64)
  (total-pages :uint64)
  (free-pages :uint64)
  (document-count :uint64)
  (path-count :uint64)
  (wal-bytes :uint64)
  (wal-frames :uint64)
  (live-readers :uint64)
  (oldest-reader-txn :uint64)
  (last-txn :uint64)
  (checkpoints :uint64)
  (file-bytes :uint64))

(cffi:defcstruct db-cache-stats
  (hits :uint64)
  (misses :uint64)
  (prefetch-hits :uint64)
  (evictions :uint64)
  (cached-pages :uint64)
  (capacity-pages :uint64))

;;; Configuration
(cffi:defcfun ("streamdb_config_new" %config-new) :pointer)
(cffi:defcfun ("streamdb_config_free" %config-free) :void (cfg :pointer))
(cffi:defcfun ("streamdb_config_set" %config-set) :int
  (cfg :pointer) (name :string) (value :uint64))
(cffi:defcfun ("streamdb_config_set_key" %config-set-key) :int
  (cfg :pointer) (key :pointer) (key-len :size))
(cffi:defcfun ("streamdb_config_set_log" %config-set-log) :int
  (cfg :pointer) (fn :pointer) (ctx :pointer))
(cffi:defcfun ("streamdb_config_set_vfs" %config-set-vfs) :int
  (cfg :pointer) (vfs :pointer))

;;; Errors and version
(cffi:defcfun ("streamdb_version" %version) :string)
(cffi:defcfun ("streamdb_strerror" %strerror) :string (code :int))
;; Declared as a pointer, decoded by hand: the text may not be valid UTF-8
;; (it can quote a path given by the caller).
(cffi:defcfun ("streamdb_errmsg" %errmsg) :pointer (db :pointer))

;;; Open and close
(cffi:defcfun ("streamdb_open" %open) :int (path :string) (cfg :pointer) (out :pointer))
(cffi:defcfun ("streamdb_close" %close) :int (db :pointer))
(cffi:defcfun ("streamdb_page_size" %page-size) :uint32 (db :pointer))
(cffi:defcfun ("streamdb_max_path_len" %max-path-len) :size (db :pointer))

;;; Writing
(cffi:defcfun ("streamdb_write_document_n" %write-document-n) :int
  (db :pointer) (path :pointer) (path-len :size) (data :pointer) (len :size) (id-out :pointer))
(cffi:defcfun ("streamdb_writer_begin" %writer-begin) :int
  (db :pointer) (path :pointer) (path-len :size) (out :pointer))
(cffi:defcfun ("streamdb_writer_write" %writer-write) :int
  (w :pointer) (data :pointer) (len :size))
(cffi:defcfun ("streamdb_writer_commit" %writer-commit) :int (w :pointer) (id-out :pointer))
(cffi:defcfun ("streamdb_writer_abort" %writer-abort) :void (w :pointer))

;;; Reading
(cffi:defcfun ("streamdb_get_n" %get-n) :int
  (db :pointer) (path :pointer) (path-len :size) (version :int64)
  (data-out :pointer) (len-out :pointer))
(cffi:defcfun ("streamdb_free" %free) :void (p :pointer))
(cffi:defcfun ("streamdb_read_n" %read-n) :int
  (db :pointer) (path :pointer) (path-len :size) (version :int64)
  (offset :uint64) (buf :pointer) (len :size) (nread :pointer))

(cffi:defcfun ("streamdb_stream_open" %stream-open) :int
  (db :pointer) (path :pointer) (path-len :size) (version :int64) (out :pointer))
(cffi:defcfun ("streamdb_stream_read" %stream-read) :int
  (s :pointer) (buf :pointer) (len :size) (nread :pointer))
(cffi:defcfun ("streamdb_stream_seek" %stream-seek) :int
  (s :pointer) (offset :int64) (whence :int) (pos-out :pointer))
(cffi:defcfun ("streamdb_stream_tell" %stream-tell) :int (s :pointer) (pos-out :pointer))
(cffi:defcfun ("streamdb_stream_size" %stream-size) :int (s :pointer) (size-out :pointer))
(cffi:defcfun ("streamdb_stream_close" %stream-close) :void (s :pointer))

(cffi:defcfun ("streamdb_stat" %stat) :int
  (db :pointer) (path :pointer) (path-len :size) (version :int64) (info :pointer))
(cffi:defcfun ("streamdb_versions" %versions) :int
  (db :pointer) (path :pointer) (path-len :size) (versions-out :pointer) (count-out :pointer))

;;; Search and listing
(cffi:defcfun ("streamdb_search_open" %search-open) :int
  (db :pointer) (prefix :pointer) (prefix-len :size) (out :pointer))
(cffi:defcfun ("streamdb_list_open" %list-open) :int
  (db :pointer) (prefix :pointer) (prefix-len :size) (out :pointer))
(cffi:defcfun ("streamdb_cursor_next" %cursor-next) :int
  (c :pointer) (path :pointer) (path-len :pointer))
(cffi:defcfun ("streamdb_cursor_close" %cursor-close) :void (c :pointer))
(cffi:defcfun ("streamdb_search_n" %search-n) :int
  (db :pointer) (prefix :pointer) (prefix-len :size) (paths-out :pointer) (count-out :pointer))
(cffi:defcfun ("streamdb_list" %list) :int
  (db :pointer) (prefix :pointer) (prefix-len :size) (paths-out :pointer) (count-out :pointer))
(cffi:defcfun ("streamdb_free_paths" %free-paths) :void (paths :pointer) (count :size))
(cffi:defcfun ("streamdb_count" %count) :int (db :pointer) (count-out :pointer))

;;; Documents with several paths
(cffi:defcfun ("streamdb_get_id_by_path" %get-id-by-path) :int
  (db :pointer) (path :pointer) (path-len :size) (id-out :pointer))
(cffi:defcfun ("streamdb_bind_to_path" %bind-to-path) :int
  (db :pointer) (id :pointer) (path :pointer) (path-len :size))
(cffi:defcfun ("streamdb_unbind_path" %unbind-path) :int
  (db :pointer) (id :pointer) (path :pointer) (path-len :size))
(cffi:defcfun ("streamdb_list_paths" %list-paths) :int
  (db :pointer) (id :pointer) (paths-out :pointer) (count-out :pointer))
(cffi:defcfun ("streamdb_delete_n" %delete-n) :int
  (db :pointer) (path :pointer) (path-len :size))
(cffi:defcfun ("streamdb_delete_by_id" %delete-by-id) :int (db :pointer) (id :pointer))
(cffi:defcfun ("streamdb_get_by_id" %get-by-id) :int
  (db :pointer) (id :pointer) (version :int64) (data-out :pointer) (len-out :pointer))

;;; Transactions, snapshots, maintenance
(cffi:defcfun ("streamdb_begin_transaction" %begin-transaction) :int (db :pointer))
(cffi:defcfun ("streamdb_commit_transaction" %commit-transaction) :int (db :pointer))
(cffi:defcfun ("streamdb_rollback_transaction" %rollback-transaction) :int (db :pointer))
(cffi:defcfun ("streamdb_snapshot" %snapshot) :int (db :pointer) (snap-out :pointer))
(cffi:defcfun ("streamdb_snapshot_close" %snapshot-close) :int (snap :pointer))
(cffi:defcfun ("streamdb_flush" %flush) :int (db :pointer))
(cffi:defcfun ("streamdb_set_quick_mode" %set-quick-mode) :int (db :pointer) (on :int))
(cffi:defcfun ("streamdb_calculate_statistics" %calculate-statistics) :int
  (db :pointer) (out :pointer))
(cffi:defcfun ("streamdb_get_cache_stats" %get-cache-stats) :int (db :pointer) (out :pointer))
(cffi:defcfun ("streamdb_check" %check) :int (db :pointer))
(cffi:defcfun ("streamdb_compact" %compact) :int (db :pointer))

;;; VFS backends (pointers passed through, never dereferenced from Lisp)
(cffi:defcfun ("streamdb_vfs_file" %vfs-file) :pointer)
(cffi:defcfun ("streamdb_vfs_memory_new" %vfs-memory-new) :pointer)
(cffi:defcfun ("streamdb_vfs_memory_free" %vfs-memory-free) :void (vfs :pointer))

;;; Issue 3 additions: compression, verification, named statistics, features,
;;; asynchronous reads (the future form only: callbacks would run Lisp on the
;;; library's worker threads; futures are the form meant for FFI callers).
(defconstant +doc-compressed+ 2)
(defconstant +feature-compression+ 1)
(defconstant +feature-encryption+ 2)

(cffi:defcfun ("streamdb_writer_set_compression" %writer-set-compression) :int
  (w :pointer) (on :int))
(cffi:defcfun ("streamdb_verify" %verify) :int
  (db :pointer) (prefix :pointer) (prefix-len :size) (checked-out :pointer))
(cffi:defcfun ("streamdb_get_stat" %get-stat) :int
  (db :pointer) (name :string) (value :pointer))
(cffi:defcfun ("streamdb_features" %features) :int)

(cffi:defcfun ("streamdb_get_future" %get-future) :int
  (db :pointer) (path :pointer) (path-len :size) (version :int64) (out :pointer))
(cffi:defcfun ("streamdb_future_ready" %future-ready) :int (f :pointer))
(cffi:defcfun ("streamdb_future_wait" %future-wait) :int (f :pointer) (timeout-ms :int64))
(cffi:defcfun ("streamdb_future_result" %future-result) :int
  (f :pointer) (data-out :pointer) (len-out :pointer) (errmsg-out :pointer))
(cffi:defcfun ("streamdb_future_cancel" %future-cancel) :int (f :pointer))
(cffi:defcfun ("streamdb_future_free" %future-free) :void (f :pointer))
