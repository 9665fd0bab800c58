;;;; db.lisp -- databases, documents, ids, search, transactions, snapshots.

(in-package #:streamdb)

;;; ------------------------------------------------------------------------
;;; The database object

(defclass database ()
  ((pointer :initarg :pointer :initform nil :accessor %db-pointer
            :documentation "The streamdb* handle, NIL once closed.")
   (path :initarg :path :initform nil :reader database-path)
   (parent :initarg :parent :initform nil :reader database-parent
           :documentation "For a snapshot, the database it was taken from.")
   (vfs :initarg :vfs :initform nil :accessor %db-vfs
        :documentation "An in-memory VFS owned by this database, freed at close.")
   (log-id :initarg :log-id :initform nil :accessor %db-log-id)
   (children :initform '() :accessor %db-children
             :documentation "Open streams, writers and snapshots made from this handle.")
   (lock :initform (sb-thread:make-mutex :name "streamdb children") :reader %db-lock))
  (:documentation "An open StreamDb database, or a read-only snapshot of one."))

(defmethod print-object ((db database) stream)
  (print-unreadable-object (db stream :type t :identity t)
    (format stream "~@[snapshot of ~*~]~S~:[ (closed)~;~]"
            (database-parent db) (database-path db) (%db-pointer db))))

(defun database-p (x) (typep x 'database))
(defun database-open-p (db) (and (%db-pointer db) t))
(defun database-snapshot-p (db) (and (database-parent db) t))

(defun db-pointer (db)
  "The live handle of DB; signals STREAMDB-CLOSED when DB is closed."
  (check-type db database)
  (or (%db-pointer db)
      (error 'streamdb-closed :operation "streamdb (Lisp)"
                              :message (format nil "~S is closed" db))))

(defun register-child (db child)
  (sb-thread:with-mutex ((%db-lock db))
    (push child (%db-children db))))

(defun unregister-child (db child)
  (when db
    (sb-thread:with-mutex ((%db-lock db))
      (setf (%db-children db) (delete child (%db-children db))))))

(defgeneric close-child (child)
  (:documentation "Closes a stream, writer or snapshot when its database is force-closed.")
  (:method ((child stream)) (close child :abort t)))

;;; ------------------------------------------------------------------------
;;; Library-level calls

(defun library-version ()
  "The version string of the loaded libstreamdb, e.g. \"0.1.0\"."
  (ensure-library)
  (%version))

(defun strerror (code)
  "The library's name for a C return CODE."
  (ensure-library)
  (%strerror code))

;;; ------------------------------------------------------------------------
;;; Log callback: one C trampoline dispatching on the context pointer.

(defvar *log-functions* (make-hash-table :synchronized t))
(defvar *log-counter* 0)
(defvar *log-counter-lock* (sb-thread:make-mutex :name "streamdb log ids"))

(defun level-keyword (level)
  (case level (0 :error) (1 :warn) (2 :info) (t level)))

(cffi:defcallback log-trampoline :void ((ctx :pointer) (level :int) (message :pointer))
  (let ((fn (gethash (cffi:pointer-address ctx) *log-functions*)))
    (when fn
      ;; Nothing may unwind through the C frames below: errors are dropped.
      (ignore-errors (funcall fn (level-keyword level) (decode-c-string message))))))

(defun register-log-function (fn)
  (let ((id (sb-thread:with-mutex (*log-counter-lock*) (incf *log-counter*))))
    (setf (gethash id *log-functions*) fn)
    id))

;;; ------------------------------------------------------------------------
;;; Open and close

(defparameter *config-options*
  ;; keyword C name kind
  '((:page-size "page_size" :integer)
    (:page-cache-size "page_cache_size" :integer)
    (:max-db-size "max_db_size" :integer)
    (:max-document-size "max_document_size" :integer)
    (:versions-to-keep "versions_to_keep" :integer)
    (:use-mmap "use_mmap" :boolean)
    (:quick-mode "quick_mode" :boolean)
    (:read-only "read_only" :boolean)
    (:create "create" :boolean)
    (:use-compression "use_compression" :boolean)
    (:file-mode "file_mode" :integer)
    (:wal-autocheckpoint "wal_autocheckpoint" :integer)
    (:sync-commits "sync_commits" :boolean)
    (:async-workers "async_workers" :integer)
    (:readahead-chunks "readahead_chunks" :integer)
    (:path-cache-size "path_cache_size" :integer)))

(defun native-path (path)
  (etypecase path
    (string path)
    (pathname (sb-ext:native-namestring (merge-pathnames path)))))

(defun open-db (path &rest options
                &key page-size page-cache-size max-db-size max-document-size
                  versions-to-keep use-mmap quick-mode read-only create
                  use-compression file-mode wal-autocheckpoint sync-commits
                  async-workers readahead-chunks path-cache-size
                  encryption-key log-function in-memory)
  "Opens (by default creating) the database file PATH and returns a DATABASE.
Options map to the fields of streamdb_config and are set by name; an option
left out keeps the library's default.  Boolean options take a generalized
boolean.  ENCRYPTION-KEY is an octet vector.  LOG-FUNCTION, when given, is
called with a level (:error, :warn, :info) and a message string.  IN-MEMORY
true keeps the files in an in-memory VFS owned by the database (gone after
CLOSE-DB).  Signals STREAMDB-LIBRARY-MISSING when libstreamdb cannot be
loaded, and a STREAMDB-ERROR subclass when the open fails."
  (declare (ignore page-size page-cache-size max-db-size max-document-size
                   versions-to-keep use-mmap quick-mode read-only create
                   use-compression file-mode wal-autocheckpoint sync-commits
                   async-workers readahead-chunks path-cache-size))
  (ensure-library)
  (let ((cfg (%config-new))
        (vfs nil)
        (log-id nil)
        (db nil))
    (when (cffi:null-pointer-p cfg)
      (error 'streamdb-out-of-memory :operation "streamdb_config_new"
                                     :message "cannot allocate a configuration"))
    (unwind-protect
         (progn
           (loop for (key name kind) in *config-options*
                 for v = (getf options key '%absent)
                 unless (eq v '%absent)
                   do (let ((value (ecase kind
                                     (:boolean (if v 1 0))
                                     (:integer
                                      (if (typep v '(unsigned-byte 64))
                                          v
                                          (error 'streamdb-invalid
                                                 :operation "open-db"
                                                 :message (format nil "~S must be a non-negative ~
                                                                       integer, not ~S" key v)))))))
                        (check-code (%config-set cfg name value) "streamdb_config_set"
                                    (cffi:null-pointer))))
           (when encryption-key
             (let ((key (ensure-simple-octets encryption-key)))
               (with-octets-pointer (p key)
                 (check-code (%config-set-key cfg p (length key)) "streamdb_config_set_key"
                             (cffi:null-pointer)))))
           (when in-memory
             (setf vfs (%vfs-memory-new))
             (when (cffi:null-pointer-p vfs)
               (setf vfs nil)
               (error 'streamdb-out-of-memory :operation "streamdb_vfs_memory_new"
                                              :message "cannot allocate an in-memory VFS"))
             (check-code (%config-set-vfs cfg vfs) "streamdb_config_set_vfs" (cffi:null-pointer)))
           (when log-function
             (setf log-id (register-log-function log-function))
             (check-code (%config-set-log cfg (cffi:callback log-trampoline)
                                          (cffi:make-pointer log-id))
                         "streamdb_config_set_log" (cffi:null-pointer)))
           (cffi:with-foreign-object (out :pointer)
             (setf (cffi:mem-ref out :pointer) (cffi:null-pointer))
             (let ((rc (%open (native-path path) cfg out)))
               (when (minusp rc)
                 (signal-code rc "streamdb_open" (cffi:null-pointer)))
               (setf db (make-instance 'database
                                       :pointer (cffi:mem-ref out :pointer)
                                       :path (native-path path)
                                       :vfs vfs :log-id log-id))))
           db)
      (%config-free cfg)
      (unless db
        (when vfs (%vfs-memory-free vfs))
        (when log-id (remhash log-id *log-functions*))))))

(defun release-db-resources (db)
  (when (%db-vfs db)
    (%vfs-memory-free (%db-vfs db))
    (setf (%db-vfs db) nil))
  (when (%db-log-id db)
    (remhash (%db-log-id db) *log-functions*)
    (setf (%db-log-id db) nil)))

(defun close-db (db &key force)
  "Closes DB (a database or a snapshot).  Closing a closed database does nothing
and returns NIL; otherwise returns T.  Without FORCE, the library refuses to
close a handle with open streams, writers, cursors or snapshots and
STREAMDB-BUSY is signalled (the handle stays open).  With FORCE, the streams,
writers (aborted) and snapshots opened through this system are closed first."
  (check-type db database)
  (let ((ptr (%db-pointer db)))
    (unless ptr
      (return-from close-db nil))
    (when force
      (loop for child = (sb-thread:with-mutex ((%db-lock db)) (first (%db-children db)))
            while child
            do (unwind-protect (ignore-errors (close-child child))
                 (unregister-child db child))))
    (let ((rc (if (database-parent db) (%snapshot-close ptr) (%close ptr))))
      (when (minusp rc)
        (signal-code rc (if (database-parent db) "streamdb_snapshot_close" "streamdb_close") ptr))
      (setf (%db-pointer db) nil)
      (unregister-child (database-parent db) db)
      (release-db-resources db)
      t)))

(defmethod close-child ((child database))
  (close-db child :force t))

(defmacro with-db ((var path &rest options) &body body)
  "Opens the database PATH with OPTIONS (as OPEN-DB), binds it to VAR for BODY,
and closes it however BODY exits; streams, writers and snapshots still open
from it are closed first (uncommitted writers are aborted)."
  `(let ((,var (open-db ,path ,@options)))
     (unwind-protect (progn ,@body)
       (close-db ,var :force t))))

(defun page-size (db)
  "The page size of DB in bytes."
  (%page-size (db-pointer db)))

(defun max-path-length (db)
  "The longest path DB accepts, in bytes."
  (%max-path-len (db-pointer db)))

(defun set-quick-mode (db on)
  "Turns quick mode (no CRC checks on reads) on or off."
  (let ((p (db-pointer db)))
    (check-code (%set-quick-mode p (if on 1 0)) "streamdb_set_quick_mode" p)
    t))

;;; ------------------------------------------------------------------------
;;; Reading

(defun maybe-decode (octets external-format)
  (if external-format (octets-string octets external-format) octets))

(defun get-document (db path &key (version 0) external-format)
  "The content of the document at PATH as an octet vector, or as a string
decoded with EXTERNAL-FORMAT (e.g. :utf-8) when given.  VERSION: 0 = current,
-1 = the previous one, a positive number = that version."
  (let ((p (db-pointer db)))
    (cffi:with-foreign-objects ((data :pointer) (len :size))
      (setf (cffi:mem-ref data :pointer) (cffi:null-pointer))
      (with-path (pp plen path)
        (check-code (%get-n p pp plen version data len) "streamdb_get_n" p))
      (maybe-decode (take-foreign-buffer (cffi:mem-ref data :pointer) (cffi:mem-ref len :size))
                    external-format))))

(defun get-document-by-id (db id &key (version 0) external-format)
  "As GET-DOCUMENT, by document id."
  (let ((p (db-pointer db)))
    (cffi:with-foreign-objects ((data :pointer) (len :size))
      (setf (cffi:mem-ref data :pointer) (cffi:null-pointer))
      (with-id-pointer (ip id)
        (check-code (%get-by-id p ip version data len) "streamdb_get_by_id" p))
      (maybe-decode (take-foreign-buffer (cffi:mem-ref data :pointer) (cffi:mem-ref len :size))
                    external-format))))

(defun read-document-range (db path offset length &key (version 0))
  "Up to LENGTH bytes of the document at PATH from byte OFFSET, as an octet
vector (shorter only at the end of the document)."
  (let ((p (db-pointer db))
        (buf (make-array length :element-type '(unsigned-byte 8))))
    (cffi:with-foreign-object (nread :size)
      (with-path (pp plen path)
        (with-octets-pointer (bp buf)
          (check-code (%read-n p pp plen version offset bp length nread) "streamdb_read_n" p)))
      (let ((n (cffi:mem-ref nread :size)))
        (if (= n length) buf (subseq buf 0 n))))))

(defstruct (document-info (:constructor make-document-info))
  "Metadata of one version of a document (streamdb_doc_info)."
  (id nil :type (or null document-id))
  (version 0 :type integer)
  (size 0 :type integer)
  (stored-size 0 :type integer)
  (crc32c 0 :type integer)
  (created-ns 0 :type integer)
  (modified-ns 0 :type integer)
  (flags 0 :type integer))

(defun document-info-inline-p (info)
  "True when the content is stored inside the document's record."
  (logtest +doc-inline+ (document-info-flags info)))

(defun document-info-compressed-p (info)
  "True when at least one chunk of the content is stored compressed."
  (logtest +doc-compressed+ (document-info-flags info)))

(defun stat (db path &key (version 0))
  "A DOCUMENT-INFO for one version of the document at PATH."
  (let ((p (db-pointer db)))
    (cffi:with-foreign-object (info '(:struct doc-info))
      (with-path (pp plen path)
        (check-code (%stat p pp plen version info) "streamdb_stat" p))
      (flet ((slot (name) (cffi:foreign-slot-value info '(:struct doc-info) name)))
        (make-document-info
         :id (copy-foreign-octets (cffi:foreign-slot-pointer info '(:struct doc-info) 'id) 16)
         :version (slot 'version) :size (slot 'size) :stored-size (slot 'stored-size)
         :crc32c (slot 'crc32c) :created-ns (slot 'created-ns)
         :modified-ns (slot 'modified-ns) :flags (slot 'flags))))))

(defun document-exists-p (db path)
  "True when PATH is bound to a document."
  (handler-case (progn (stat db path) t)
    (streamdb-not-found () nil)))

(defun versions (db path)
  "The readable version numbers of the document at PATH, oldest first."
  (let ((p (db-pointer db)))
    (cffi:with-foreign-objects ((arr :pointer) (count :size))
      (setf (cffi:mem-ref arr :pointer) (cffi:null-pointer))
      (with-path (pp plen path)
        (check-code (%versions p pp plen arr count) "streamdb_versions" p))
      (let ((a (cffi:mem-ref arr :pointer))
            (n (cffi:mem-ref count :size)))
        (unwind-protect
             (loop for i below n collect (cffi:mem-aref a :uint64 i))
          (unless (cffi:null-pointer-p a) (%free a)))))))

(defun verify (db &optional (prefix "/"))
  "Re-reads every version of every document under PREFIX and checks its CRCs,
whatever quick mode says.  Returns the number of versions read; signals
STREAMDB-CORRUPT naming the first damaged document."
  (let ((p (db-pointer db)))
    (cffi:with-foreign-object (n :uint64)
      (setf (cffi:mem-ref n :uint64) 0)
      (with-path (pp plen prefix)
        (check-code (%verify p pp plen n) "streamdb_verify" p))
      (cffi:mem-ref n :uint64))))

;;; ------------------------------------------------------------------------
;;; Search and listing

(defun path-array-call (db fn name prefix)
  (let ((p (db-pointer db)))
    (cffi:with-foreign-objects ((arr :pointer) (count :size))
      (setf (cffi:mem-ref arr :pointer) (cffi:null-pointer)
            (cffi:mem-ref count :size) 0)
      (with-path (pp plen prefix)
        (check-code (funcall fn p pp plen arr count) name p))
      (take-foreign-paths (cffi:mem-ref arr :pointer) (cffi:mem-ref count :size)))))

(defun search (db prefix)
  "Every path that starts with PREFIX, in byte order, as a list of strings."
  (path-array-call db #'%search-n "streamdb_search_n" prefix))

(defun list-directory (db prefix)
  "One directory level under PREFIX: document paths as they are, and each
sub-directory once, with a trailing slash."
  (path-array-call db #'%list "streamdb_list" prefix))

(defun map-paths (function db prefix &key list)
  "Calls FUNCTION on each path under PREFIX, one at a time from a cursor (never
building the list).  With LIST true, walks one directory level as
LIST-DIRECTORY.  The cursor is closed however the walk ends."
  (let ((p (db-pointer db)))
    (cffi:with-foreign-objects ((out :pointer) (path :pointer) (len :size))
      (setf (cffi:mem-ref out :pointer) (cffi:null-pointer))
      (with-path (pp plen prefix)
        (if list
            (check-code (%list-open p pp plen out) "streamdb_list_open" p)
            (check-code (%search-open p pp plen out) "streamdb_search_open" p)))
      (let ((cursor (cffi:mem-ref out :pointer)))
        (unwind-protect
             (loop
               (let ((rc (check-code (%cursor-next cursor path len) "streamdb_cursor_next" p)))
                 (when (= rc +done+) (return))
                 (funcall function
                          (cffi:foreign-string-to-lisp (cffi:mem-ref path :pointer)
                                                       :count (cffi:mem-ref len :size)
                                                       :encoding :utf-8))))
          (%cursor-close cursor)))))
  nil)

(defmacro do-paths ((var db prefix &key list result) &body body)
  "Evaluates BODY with VAR bound to each path under PREFIX, read lazily from a
cursor that is closed however the loop exits.  Like DOLIST, the loop is in a
NIL block and returns RESULT.  LIST true walks one directory level."
  `(block nil
     (map-paths (lambda (,var) (declare (ignorable ,var)) ,@body) ,db ,prefix :list ,list)
     ,result))

(defun count-documents (db)
  "The number of documents (distinct ids) in DB."
  (let ((p (db-pointer db)))
    (cffi:with-foreign-object (n :uint64)
      (check-code (%count p n) "streamdb_count" p)
      (cffi:mem-ref n :uint64))))

;;; ------------------------------------------------------------------------
;;; Ids and paths

(defun get-id-by-path (db path)
  "The 16-octet id of the document at PATH."
  (let ((p (db-pointer db))
        (id (make-array 16 :element-type '(unsigned-byte 8))))
    (with-path (pp plen path)
      (with-octets-pointer (ip id)
        (check-code (%get-id-by-path p pp plen ip) "streamdb_get_id_by_path" p)))
    id))

(defun bind-to-path (db id path)
  "Binds PATH to the document ID (octets or UUID text).  STREAMDB-EXISTS when
PATH is bound to another document."
  (let ((p (db-pointer db)))
    (with-id-pointer (ip id)
      (with-path (pp plen path)
        (check-code (%bind-to-path p ip pp plen) "streamdb_bind_to_path" p)))
    t))

(defun unbind-path (db id path)
  "Unbinds PATH from the document ID; the document goes when no path is left."
  (let ((p (db-pointer db)))
    (with-id-pointer (ip id)
      (with-path (pp plen path)
        (check-code (%unbind-path p ip pp plen) "streamdb_unbind_path" p)))
    t))

(defun list-paths (db id)
  "Every path bound to the document ID, as a list of strings."
  (let ((p (db-pointer db)))
    (cffi:with-foreign-objects ((arr :pointer) (count :size))
      (setf (cffi:mem-ref arr :pointer) (cffi:null-pointer)
            (cffi:mem-ref count :size) 0)
      (with-id-pointer (ip id)
        (check-code (%list-paths p ip arr count) "streamdb_list_paths" p))
      (take-foreign-paths (cffi:mem-ref arr :pointer) (cffi:mem-ref count :size)))))

(defun delete-document (db path)
  "Unbinds PATH; the document is removed when no path is left.  Returns T."
  (let ((p (db-pointer db)))
    (with-path (pp plen path)
      (check-code (%delete-n p pp plen) "streamdb_delete_n" p))
    t))

(defun delete-by-id (db id)
  "Removes the document ID and all its paths.  Returns T."
  (let ((p (db-pointer db)))
    (with-id-pointer (ip id)
      (check-code (%delete-by-id p ip) "streamdb_delete_by_id" p))
    t))

;;; ------------------------------------------------------------------------
;;; Transactions

(defun begin-transaction (db)
  (let ((p (db-pointer db)))
    (check-code (%begin-transaction p) "streamdb_begin_transaction" p)
    t))

(defun commit-transaction (db)
  (let ((p (db-pointer db)))
    (check-code (%commit-transaction p) "streamdb_commit_transaction" p)
    t))

(defun rollback-transaction (db)
  (let ((p (db-pointer db)))
    (check-code (%rollback-transaction p) "streamdb_rollback_transaction" p)
    t))

(defmacro with-transaction ((db) &body body)
  "Runs BODY in a transaction on DB: commits when BODY returns, rolls back when
it exits non-locally (an error, THROW, RETURN-FROM ...).  Returns BODY's values."
  (let ((d (gensym "DB")) (done (gensym "DONE")))
    `(let ((,d ,db) (,done nil))
       (begin-transaction ,d)
       (unwind-protect
            (multiple-value-prog1 (progn ,@body)
              (commit-transaction ,d)
              (setf ,done t))
         (unless ,done
           (rollback-after-unwind ,d))))))

(defun rollback-after-unwind (db)
  ;; Must not replace the condition that is unwinding; a failure is reported
  ;; as a warning.  After a failed commit the library may already have ended
  ;; the transaction, in which case the rollback reports STREAMDB_ERR_TRANSACTION.
  (handler-case (rollback-transaction db)
    (streamdb-transaction-error () nil)
    (error (e) (warn "StreamDb rollback failed: ~A" e))))

;;; ------------------------------------------------------------------------
;;; Snapshots

(defun snapshot (db)
  "A read-only DATABASE seeing DB as it is now, whatever is committed later.
Every read function accepts it; writes signal STREAMDB-READ-ONLY.  Close it with
CLOSE-SNAPSHOT (or CLOSE-DB)."
  (let ((p (db-pointer db)))
    (cffi:with-foreign-object (out :pointer)
      (check-code (%snapshot p out) "streamdb_snapshot" p)
      (let ((snap (make-instance 'database :pointer (cffi:mem-ref out :pointer)
                                           :path (database-path db) :parent db)))
        (register-child db snap)
        snap))))

(defun close-snapshot (snap)
  (close-db snap))

(defmacro with-snapshot ((var db) &body body)
  "Binds VAR to a snapshot of DB for BODY, closing it however BODY exits."
  `(let ((,var (snapshot ,db)))
     (unwind-protect (progn ,@body)
       (close-db ,var :force t))))

;;; ------------------------------------------------------------------------
;;; Maintenance

(defun flush (db)
  "Makes everything committed durable and checkpoints the log.  Returns T."
  (let ((p (db-pointer db)))
    (check-code (%flush p) "streamdb_flush" p)
    t))

(defun struct-plist (ptr type slots)
  (loop for s in slots
        collect (intern (symbol-name s) :keyword)
        collect (cffi:foreign-slot-value ptr type s)))

(defun stats (db)
  "streamdb_calculate_statistics as a property list (:page-size :total-pages
:free-pages :document-count :path-count :wal-bytes :wal-frames :live-readers
:oldest-reader-txn :last-txn :checkpoints :file-bytes)."
  (let ((p (db-pointer db)))
    (cffi:with-foreign-object (out '(:struct db-stats))
      (check-code (%calculate-statistics p out) "streamdb_calculate_statistics" p)
      (struct-plist out '(:struct db-stats)
                    '(page-size total-pages free-pages document-count path-count
                      wal-bytes wal-frames live-readers oldest-reader-txn last-txn
                      checkpoints file-bytes)))))

(defun cache-stats (db)
  "streamdb_get_cache_stats as a property list (:hits :misses :prefetch-hits
:evictions :cached-pages :capacity-pages)."
  (let ((p (db-pointer db)))
    (cffi:with-foreign-object (out '(:struct db-cache-stats))
      (check-code (%get-cache-stats p out) "streamdb_get_cache_stats" p)
      (struct-plist out '(:struct db-cache-stats)
                    '(hits misses prefetch-hits evictions cached-pages capacity-pages)))))

(defun stat-name (name)
  (etypecase name
    (string name)
    (symbol (substitute #\_ #\- (string-downcase (symbol-name name))))))

(defun get-stat (db name)
  "One named statistic of DB as an integer.  NAME is a string such as
\"logical_bytes\" or a keyword such as :LOGICAL-BYTES (any field of STATS and
CACHE-STATS, :STORED-BYTES, :PREFETCH-HITS, :ASYNC-PENDING ...)."
  (let ((p (db-pointer db)))
    (cffi:with-foreign-object (v :uint64)
      (check-code (%get-stat p (stat-name name) v) "streamdb_get_stat" p)
      (cffi:mem-ref v :uint64))))

(defun features ()
  "The optional features built into the loaded library: a list of :COMPRESSION
and :ENCRYPTION."
  (ensure-library)
  (let ((bits (%features)))
    (append (and (logtest bits +feature-compression+) '(:compression))
            (and (logtest bits +feature-encryption+) '(:encryption)))))

(defun check (db)
  "Full integrity walk.  Returns T, or signals STREAMDB-CORRUPT with the first problem."
  (let ((p (db-pointer db)))
    (check-code (%check p) "streamdb_check" p)
    t))

(defun compact (db)
  "Checkpoints, then gives free pages at the end of the file back to the OS."
  (let ((p (db-pointer db)))
    (check-code (%compact p) "streamdb_compact" p)
    t))
