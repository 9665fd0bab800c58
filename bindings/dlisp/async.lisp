;;;; async.lisp -- asynchronous whole-document reads through futures.
;;;;
;;;; The library serves these reads on worker threads of its own; Lisp only
;;;; submits, polls or waits, and takes the result on its own thread, so no
;;;; Lisp code ever runs on a library thread.  A future sees the database as of
;;;; its submission.  Free every future (FREE-FUTURE, or WITH-DOCUMENT-FUTURE),
;;;; before or after closing the database; freeing a pending one cancels it.

(in-package #:streamdb)

(defclass document-future ()
  ((db :initarg :db :reader future-database)
   (pointer :initarg :pointer :initform nil :accessor %future-pointer)
   (path :initarg :path :reader future-path))
  (:documentation "A pending or finished asynchronous read of one document."))

(defmethod print-object ((f document-future) stream)
  (print-unreadable-object (f stream :type t :identity t)
    (format stream "~S~:[ (freed)~;~]" (future-path f) (%future-pointer f))))

(defun live-future-pointer (f)
  (or (%future-pointer f)
      (error 'streamdb-closed :operation "document future"
                              :message (format nil "~S has been freed" f))))

(defun get-document-async (db path &key (version 0))
  "Submits a read of the document at PATH (VERSION as in GET-DOCUMENT) to the
library's worker threads and returns a DOCUMENT-FUTURE at once."
  (let ((p (db-pointer db)))
    (cffi:with-foreign-object (out :pointer)
      (setf (cffi:mem-ref out :pointer) (cffi:null-pointer))
      (with-path (pp plen path)
        (check-code (%get-future p pp plen version out) "streamdb_get_future" p))
      (make-instance 'document-future :db db :pointer (cffi:mem-ref out :pointer) :path path))))

(defun future-ready-p (future)
  "True when the result is ready (or the request was cancelled)."
  (= 1 (%future-ready (live-future-pointer future))))

(defun future-wait (future &optional timeout-ms)
  "Waits for FUTURE, forever or up to TIMEOUT-MS milliseconds.  T when it is
ready, NIL on timeout."
  (let ((rc (%future-wait (live-future-pointer future) (or timeout-ms -1))))
    (cond ((zerop rc) t)
          ((= rc -12) nil)
          (t (signal-code rc "streamdb_future_wait"
                          (errmsg-pointer (future-database future)))))))

(defun future-result (future &key external-format (wait t))
  "The document read by FUTURE: octets, or a string with EXTERNAL-FORMAT.
With WAIT (the default) waits for it first; without, signals STREAMDB-BUSY
when it is not ready.  A failed read signals its condition (STREAMDB-CANCELLED
for a cancelled one).  The result can be taken once."
  (when wait (future-wait future))
  (let ((p (live-future-pointer future)))
    (cffi:with-foreign-objects ((data :pointer) (len :size) (msg :pointer))
      (setf (cffi:mem-ref data :pointer) (cffi:null-pointer)
            (cffi:mem-ref len :size) 0
            (cffi:mem-ref msg :pointer) (cffi:null-pointer))
      (let ((rc (%future-result p data len msg)))
        (when (minusp rc)
          (let ((text (decode-c-string (cffi:mem-ref msg :pointer))))
            (error (code-condition-class rc)
                   :code rc :operation "streamdb_future_result"
                   :message (if (and text (plusp (length text))) text (%strerror rc)))))
        (maybe-decode (take-foreign-buffer (cffi:mem-ref data :pointer) (cffi:mem-ref len :size))
                      external-format)))))

(defun future-cancel (future)
  "Cancels a pending read: T if it will not run, NIL if it is running or done."
  (let ((rc (%future-cancel (live-future-pointer future))))
    (cond ((zerop rc) t)
          ((= rc -12) nil)
          (t (signal-code rc "streamdb_future_cancel"
                          (errmsg-pointer (future-database future)))))))

(defun free-future (future)
  "Frees FUTURE (cancelling it if pending).  Freeing twice does nothing."
  (let ((p (%future-pointer future)))
    (when p
      (setf (%future-pointer future) nil)
      (%future-free p)
      t)))

(defmacro with-document-future ((var db path &rest options &key version) &body body)
  "Binds VAR to (GET-DOCUMENT-ASYNC DB PATH ...) for BODY and frees it however
BODY exits."
  (declare (ignore version))
  `(let ((,var (get-document-async ,db ,path ,@options)))
     (unwind-protect (progn ,@body)
       (free-future ,var))))
