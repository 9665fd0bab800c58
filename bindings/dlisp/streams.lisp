;;;; streams.lisp -- documents as binary Gray streams (trivial-gray-streams).
;;;;
;;;; DOCUMENT-INPUT-STREAM wraps a streamdb_stream: READ-BYTE, READ-SEQUENCE and
;;;; FILE-POSITION (reading and setting, with :START and :END) work on it, and it
;;;; reads one version of the document as of its opening.  Large READ-SEQUENCE
;;;; calls into an octet vector go straight from the library into the vector.
;;;;
;;;; DOCUMENT-OUTPUT-STREAM wraps a streamdb_writer: WRITE-BYTE and
;;;; WRITE-SEQUENCE; CLOSE commits, (CLOSE s :ABORT T) aborts.

(in-package #:streamdb)

(defconstant +chunk-size+ 65536)

(defun errmsg-pointer (db)
  (or (and db (%db-pointer db)) (cffi:null-pointer)))

;;; ------------------------------------------------------------------------
;;; Input

(defclass document-input-stream (trivial-gray-streams:fundamental-binary-input-stream)
  ((db :initarg :db :reader document-stream-database)
   (pointer :initarg :pointer :accessor %stream-pointer)
   (path :initarg :path :reader document-stream-path)
   (size :initarg :size :reader document-stream-length
         :documentation "The document's length in bytes.")
   (buffer :initform (make-array +chunk-size+ :element-type '(unsigned-byte 8))
           :reader %stream-buffer)
   (start :initform 0 :type fixnum :accessor %stream-start)
   (end :initform 0 :type fixnum :accessor %stream-end)
   (c-pos :initform 0 :accessor %stream-c-pos
          :documentation "Position of the C stream: just after the buffered bytes."))
  (:documentation "A binary input stream over one version of one document."))

(defmethod print-object ((s document-input-stream) stream)
  (print-unreadable-object (s stream :type t :identity t)
    (format stream "~S~:[ (closed)~;~]" (document-stream-path s) (%stream-pointer s))))

(defun live-stream-pointer (s)
  (or (%stream-pointer s)
      (error 'streamdb-closed :operation "document stream"
                              :message (format nil "~S is closed" s))))

(defun c-stream-read (s ptr len)
  "Reads up to LEN bytes into PTR from the C stream; returns the count."
  (cffi:with-foreign-object (nread :size)
    (setf (cffi:mem-ref nread :size) 0)
    (check-code (%stream-read (live-stream-pointer s) ptr len nread)
                "streamdb_stream_read" (errmsg-pointer (document-stream-database s)))
    (let ((n (cffi:mem-ref nread :size)))
      (incf (%stream-c-pos s) n)
      n)))

(defun fill-stream-buffer (s)
  (let* ((buf (%stream-buffer s))
         (n (with-octets-pointer (p buf) (c-stream-read s p (length buf)))))
    (setf (%stream-start s) 0
          (%stream-end s) n)
    n))

(defmethod stream-element-type ((s document-input-stream))
  '(unsigned-byte 8))

(defmethod trivial-gray-streams:stream-read-byte ((s document-input-stream))
  (live-stream-pointer s)
  (when (>= (%stream-start s) (%stream-end s))
    (when (zerop (fill-stream-buffer s))
      (return-from trivial-gray-streams:stream-read-byte :eof)))
  (prog1 (aref (%stream-buffer s) (%stream-start s))
    (incf (%stream-start s))))

(defmethod trivial-gray-streams:stream-read-sequence
    ((s document-input-stream) seq start end &key)
  (live-stream-pointer s)
  (let ((i start)
        (end (or end (length seq)))
        (buf (%stream-buffer s)))
    (flet ((take-buffered ()
             (let ((n (min (- end i) (- (%stream-end s) (%stream-start s)))))
               (when (plusp n)
                 (replace seq buf :start1 i :end1 (+ i n) :start2 (%stream-start s))
                 (incf (%stream-start s) n)
                 (incf i n)))))
      (take-buffered)
      (loop while (< i end)
            do (if (and (typep seq 'octets) (>= (- end i) (length buf)))
                   ;; Large read into an octet vector: no intermediate copy.
                   (let ((n (with-octets-pointer (p seq)
                              (c-stream-read s (cffi:inc-pointer p i) (- end i)))))
                     (when (zerop n) (return))
                     (incf i n))
                   (progn
                     (when (zerop (fill-stream-buffer s)) (return))
                     (take-buffered)))))
    i))

(defmethod trivial-gray-streams:stream-file-position ((s document-input-stream))
  (and (%stream-pointer s)
       (- (%stream-c-pos s) (- (%stream-end s) (%stream-start s)))))

(defmethod (setf trivial-gray-streams:stream-file-position) (position (s document-input-stream))
  (let* ((ptr (live-stream-pointer s))
         (target (case position
                   (:start 0)
                   (:end (document-stream-length s))
                   (t position))))
    (unless (typep target '(integer 0))
      (return-from trivial-gray-streams:stream-file-position nil))
    (cffi:with-foreign-object (pos :uint64)
      (let ((rc (%stream-seek ptr target 0 pos)))
        (cond ((= rc -3) nil)           ; invalid position: FILE-POSITION returns false
              ((minusp rc)
               (signal-code rc "streamdb_stream_seek"
                            (errmsg-pointer (document-stream-database s))))
              (t
               (setf (%stream-c-pos s) (cffi:mem-ref pos :uint64)
                     (%stream-start s) 0
                     (%stream-end s) 0)
               t))))))

(defmethod trivial-gray-streams:stream-listen ((s document-input-stream))
  (and (%stream-pointer s)
       (< (trivial-gray-streams:stream-file-position s) (document-stream-length s))))

(defmethod trivial-gray-streams:stream-clear-input ((s document-input-stream))
  nil)

(defmethod close ((s document-input-stream) &key abort)
  (declare (ignore abort))
  (let ((p (%stream-pointer s)))
    (when p
      (setf (%stream-pointer s) nil)
      (%stream-close p)
      (unregister-child (document-stream-database s) s)))
  (call-next-method))

(defun open-document-stream (db path &key (version 0))
  "Opens one version of the document at PATH (0 = current) as a binary input
stream of (UNSIGNED-BYTE 8).  Close it (CLOSE, WITH-OPEN-STREAM or
WITH-DOCUMENT-STREAM) before closing DB."
  (let ((p (db-pointer db)))
    (cffi:with-foreign-objects ((out :pointer) (size :uint64))
      (with-path (pp plen path)
        (check-code (%stream-open p pp plen version out) "streamdb_stream_open" p))
      (let ((sp (cffi:mem-ref out :pointer))
            (ok nil))
        (unwind-protect
             (progn
               (check-code (%stream-size sp size) "streamdb_stream_size" p)
               (let ((s (make-instance 'document-input-stream
                                       :db db :pointer sp :path path
                                       :size (cffi:mem-ref size :uint64))))
                 (register-child db s)
                 (setf ok t)
                 s))
          (unless ok (%stream-close sp)))))))

(defmacro with-document-stream ((var db path &rest options &key version) &body body)
  "Binds VAR to (OPEN-DOCUMENT-STREAM DB PATH ...) for BODY and closes it
however BODY exits."
  (declare (ignore version))
  `(let ((,var (open-document-stream ,db ,path ,@options)))
     (unwind-protect (progn ,@body)
       (close ,var))))

;;; ------------------------------------------------------------------------
;;; Output (streaming writer)

(defclass document-output-stream (trivial-gray-streams:fundamental-binary-output-stream)
  ((db :initarg :db :reader document-stream-database)
   (pointer :initarg :pointer :accessor %stream-pointer)
   (path :initarg :path :reader document-stream-path)
   (buffer :initform (make-array +chunk-size+ :element-type '(unsigned-byte 8))
           :reader %stream-buffer)
   (fill :initform 0 :type fixnum :accessor %stream-fill)
   (id :initform nil :accessor document-writer-id
       :documentation "The document id, once the writer is committed."))
  (:documentation "A streaming writer: nothing is visible until CLOSE commits."))

(defmethod print-object ((s document-output-stream) stream)
  (print-unreadable-object (s stream :type t :identity t)
    (format stream "~S~:[ (closed)~;~]" (document-stream-path s) (%stream-pointer s))))

(defun c-writer-write (s ptr len)
  (check-code (%writer-write (live-stream-pointer s) ptr len)
              "streamdb_writer_write" (errmsg-pointer (document-stream-database s))))

(defun flush-writer-buffer (s)
  (let ((n (%stream-fill s)))
    (when (plusp n)
      (with-octets-pointer (p (%stream-buffer s))
        (c-writer-write s p n))
      (setf (%stream-fill s) 0))))

(defmethod stream-element-type ((s document-output-stream))
  '(unsigned-byte 8))

(defmethod trivial-gray-streams:stream-write-byte ((s document-output-stream) byte)
  (live-stream-pointer s)
  (when (= (%stream-fill s) (length (%stream-buffer s)))
    (flush-writer-buffer s))
  (setf (aref (%stream-buffer s) (%stream-fill s)) byte)
  (incf (%stream-fill s))
  byte)

(defmethod trivial-gray-streams:stream-write-sequence
    ((s document-output-stream) seq start end &key)
  (live-stream-pointer s)
  (let ((i start)
        (end (or end (length seq)))
        (buf (%stream-buffer s)))
    (if (and (typep seq 'octets) (>= (- end i) (length buf)))
        (progn
          (flush-writer-buffer s)
          (with-octets-pointer (p seq)
            (c-writer-write s (cffi:inc-pointer p i) (- end i))))
        (loop while (< i end)
              do (when (= (%stream-fill s) (length buf))
                   (flush-writer-buffer s))
                 (let ((n (min (- end i) (- (length buf) (%stream-fill s)))))
                   (replace buf seq :start1 (%stream-fill s) :start2 i :end2 (+ i n))
                   (incf (%stream-fill s) n)
                   (incf i n))))
    seq))

(defmethod trivial-gray-streams:stream-finish-output ((s document-output-stream))
  (when (%stream-pointer s) (flush-writer-buffer s))
  nil)

(defmethod trivial-gray-streams:stream-force-output ((s document-output-stream))
  (when (%stream-pointer s) (flush-writer-buffer s))
  nil)

(defmethod close ((s document-output-stream) &key abort)
  (let ((p (%stream-pointer s))
        (db (document-stream-database s)))
    (when p
      (if abort
          (unwind-protect (%writer-abort p)
            (setf (%stream-pointer s) nil)
            (unregister-child db s))
          (let ((flushed nil))
            (unwind-protect
                 (progn (flush-writer-buffer s) (setf flushed t))
              (unless flushed
                ;; the buffered tail could not be written: nothing is committed
                (%writer-abort p)
                (setf (%stream-pointer s) nil)
                (unregister-child db s)))
            ;; commit frees the writer whether it succeeds or not
            (let ((id (make-array 16 :element-type '(unsigned-byte 8)))
                  (rc 0))
              (unwind-protect
                   (with-octets-pointer (ip id)
                     (setf rc (%writer-commit p ip)))
                (setf (%stream-pointer s) nil)
                (unregister-child db s))
              (when (minusp rc)
                (signal-code rc "streamdb_writer_commit" (errmsg-pointer db)))
              (setf (document-writer-id s) id))))))
  (call-next-method))

(defun open-document-writer (db path &key (compression :default))
  "A DOCUMENT-OUTPUT-STREAM writing a new version of the document at PATH.
CLOSE commits it (DOCUMENT-WRITER-ID then gives the id); (CLOSE s :ABORT T)
leaves no trace.  COMPRESSION T or NIL overrides the database's
use-compression for this document; :DEFAULT keeps it.  The writer holds the
database's write lock until closed: do not write to the same database from
the same thread meanwhile."
  (let ((p (db-pointer db)))
    (cffi:with-foreign-object (out :pointer)
      (with-path (pp plen path)
        (check-code (%writer-begin p pp plen out) "streamdb_writer_begin" p))
      (let ((w (cffi:mem-ref out :pointer))
            (ok nil))
        (unwind-protect
             (progn
               (unless (eq compression :default)
                 (check-code (%writer-set-compression w (if compression 1 0))
                             "streamdb_writer_set_compression" p))
               (let ((s (make-instance 'document-output-stream :db db :pointer w :path path)))
                 (register-child db s)
                 (setf ok t)
                 s))
          (unless ok (%writer-abort w)))))))

(defmacro with-document-writer ((var db path &rest options &key compression) &body body)
  "Binds VAR to (OPEN-DOCUMENT-WRITER DB PATH ...) for BODY; commits when BODY
returns and aborts when it exits non-locally.  Returns BODY's values."
  (declare (ignore compression))
  (let ((ok (gensym "OK")))
    `(let ((,var (open-document-writer ,db ,path ,@options))
           (,ok nil))
       (unwind-protect (multiple-value-prog1 (progn ,@body) (setf ,ok t))
         (close ,var :abort (not ,ok))))))

;;; ------------------------------------------------------------------------
;;; Writing whole documents

(defun write-octets (db path octets)
  (let ((p (db-pointer db))
        (id (make-array 16 :element-type '(unsigned-byte 8))))
    (with-path (pp plen path)
      (with-octets-pointer (dp octets)
        (with-octets-pointer (ip id)
          (check-code (%write-document-n p pp plen dp (length octets) ip)
                      "streamdb_write_document_n" p))))
    id))

(defun write-from-stream (db path in chunk-size compression)
  "Copies the binary input stream IN into a new version of PATH, CHUNK-SIZE
bytes at a time; returns the writer, committed."
  (let ((buffer (make-array chunk-size :element-type '(unsigned-byte 8))))
    (with-document-writer (w db path :compression compression)
      (loop for n = (read-sequence buffer in)
            while (plusp n)
            do (write-sequence buffer w :end n))
      w)))

(defun write-octets-with-writer (db path octets compression)
  (with-document-writer (w db path :compression compression)
    (write-sequence octets w)
    w))

(defun write-document (db path data &key (external-format :utf-8) (chunk-size +chunk-size+)
                                         (compression :default))
  "Writes DATA as a new version of the document at PATH and returns its
16-octet id.  DATA is a string (encoded with EXTERNAL-FORMAT, UTF-8 by
default), an octet vector, a binary input stream (read in chunks of
CHUNK-SIZE bytes through a streaming writer, never loaded whole), or a
pathname (the file is streamed the same way).  COMPRESSION T or NIL
overrides the database's use-compression for this document."
  (flet ((whole (octets)
           (if (eq compression :default)
               (write-octets db path octets)
               (document-writer-id (write-octets-with-writer db path octets compression)))))
    (etypecase data
      (string (whole (string-octets data external-format)))
      ((vector (unsigned-byte 8)) (whole (ensure-simple-octets data)))
      (stream
       (unless (and (input-stream-p data)
                    (subtypep (stream-element-type data) '(unsigned-byte 8)))
         (error 'type-error :datum data
                            :expected-type '(and stream (satisfies input-stream-p))))
       (document-writer-id (write-from-stream db path data chunk-size compression)))
      (pathname
       (with-open-file (in data :element-type '(unsigned-byte 8))
         (document-writer-id (write-from-stream db path in chunk-size compression)))))))
