;;;; conditions.lisp -- C return codes as Lisp conditions.
;;;;
;;;; Every negative code of streamdb.h has its own subclass of STREAMDB-ERROR.
;;;; Each condition keeps the C code, a keyword naming it, the name of the C
;;;; function that failed, and the text of streamdb_errmsg read right after the
;;;; failure on the same thread (or streamdb_strerror when errmsg is empty).

(in-package #:streamdb)

(define-condition streamdb-error (error)
  ((code :initarg :code :reader streamdb-error-code
         :documentation "The negative C return code.")
   (message :initarg :message :initform nil :reader streamdb-error-message
            :documentation "streamdb_errmsg (or streamdb_strerror) at the failure.")
   (operation :initarg :operation :initform nil :reader streamdb-error-operation
              :documentation "The C function that failed."))
  (:report (lambda (c s)
             (format s "StreamDb error ~D (~(~A~))~@[ in ~A~]~@[: ~A~]"
                     (streamdb-error-code c) (streamdb-error-kind c)
                     (streamdb-error-operation c) (streamdb-error-message c))))
  (:documentation "Base class of every failure reported by libstreamdb."))

(eval-when (:compile-toplevel :load-toplevel :execute)
(defparameter *code-table*
  ;; code keyword condition-class
  '((-1  :io           streamdb-io-error)
    (-2  :not-found    streamdb-not-found)
    (-3  :invalid      streamdb-invalid)
    (-4  :internal     streamdb-internal-error)
    (-5  :transaction  streamdb-transaction-error)
    (-6  :corrupt      streamdb-corrupt)
    (-7  :locked       streamdb-locked)
    (-8  :too-large    streamdb-too-large)
    (-9  :full         streamdb-full)
    (-10 :closed       streamdb-closed)
    (-11 :nomem        streamdb-out-of-memory)
    (-12 :busy         streamdb-busy)
    (-13 :readonly     streamdb-read-only)
    (-14 :incompatible streamdb-incompatible)
    (-15 :not-a-db     streamdb-not-a-database)
    (-16 :fatal        streamdb-fatal)
    (-17 :crypto       streamdb-crypto)
    (-18 :unsupported  streamdb-unsupported)
    (-19 :exists       streamdb-exists)
    (-20 :cancelled    streamdb-cancelled)
    (-21 :would-block  streamdb-would-block))))

(defmacro define-code-conditions ()
  `(progn
     ,@(loop for (code kw class) in *code-table*
             collect `(define-condition ,class (streamdb-error) ()
                        (:default-initargs :code ,code)
                        (:documentation
                         ,(format nil "StreamDb code ~D (~(~A~))." code kw))))))

(define-code-conditions)

(defun code-keyword (code)
  "The keyword naming the C return CODE (:unknown for a code not in streamdb.h)."
  (or (second (assoc code *code-table*)) :unknown))

(defun code-condition-class (code)
  "The condition class signalled for the C return CODE."
  (or (third (assoc code *code-table*)) 'streamdb-error))

(defun streamdb-error-kind (condition)
  "The keyword naming the C code of CONDITION, e.g. :NOT-FOUND."
  (code-keyword (streamdb-error-code condition)))

(defun decode-c-string (ptr)
  "A NUL-terminated C string as a Lisp string: UTF-8, with invalid bytes replaced."
  (if (cffi:null-pointer-p ptr)
      nil
      (let ((len (loop for i from 0 until (zerop (cffi:mem-aref ptr :uint8 i)) finally (return i))))
        (let ((bytes (make-array len :element-type '(unsigned-byte 8))))
          (dotimes (i len) (setf (aref bytes i) (cffi:mem-aref ptr :uint8 i)))
          (octets-to-string* bytes)))))

(defun octets-to-string* (bytes)
  "UTF-8 decoding that never fails (invalid sequences become U+FFFD)."
  (let ((babel-encodings:*suppress-character-coding-errors* t))
    (babel:octets-to-string bytes :encoding :utf-8)))

(defun error-message (db-pointer code)
  (let ((msg (ignore-errors (decode-c-string (%errmsg db-pointer)))))
    (if (and msg (plusp (length msg)))
        msg
        (ignore-errors (%strerror code)))))

(defun signal-code (code operation &optional (db-pointer (cffi:null-pointer)))
  "Signals the condition for the negative C CODE returned by OPERATION."
  (error (code-condition-class code)
         :code code
         :operation operation
         :message (error-message db-pointer code)))

(defmacro check-code (form operation db-pointer)
  "Evaluates FORM (a call returning a C code).  A negative code signals its
condition; otherwise returns the code (0, or 1 for STREAMDB_DONE)."
  (let ((rc (gensym "RC")))
    `(let ((,rc ,form))
       (when (minusp ,rc)
         (signal-code ,rc ,operation ,db-pointer))
       ,rc)))
