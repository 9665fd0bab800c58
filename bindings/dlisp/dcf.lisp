;;;; dcf.lisp -- DCF's five persistence calls, with DCF's own signatures.
;;;;
;;;;   (dcf-db-insert node path data &key schema) => T
;;;;   (dcf-db-query  node path &key schema)      => string (UTF-8 decoded)
;;;;   (dcf-db-delete node path)                  => T
;;;;   (dcf-db-search node prefix)                => list of path strings
;;;;   (dcf-db-flush  node)                       => T
;;;;
;;;; NODE is a DATABASE, or any object for which DCF defines a NODE-DATABASE
;;;; method returning one.  Every failure is signalled as a DCF-ERROR whose code
;;;; is one of :IO :NOT-FOUND :INVALID-INPUT :PANIC :TRANSACTION; the C code (or
;;;; NIL for a failure detected in Lisp), the message and the original
;;;; condition are kept in the DCF-ERROR.
;;;;
;;;; SCHEMA.  DCF passes an optional schema; the store keeps no schema of its
;;;; own, so SCHEMA selects how DATA is encoded and how a queried value is
;;;; checked, through two generic functions DCF may specialise:
;;;;   ENCODE-FOR-SCHEMA schema data   => string or octet vector to store
;;;;   DECODE-FOR-SCHEMA schema octets => the string DCF-DB-QUERY returns
;;;; Built in: NIL or any other object: strings and octet vectors are stored
;;;; as they are, anything else JSON-encoded with YASON:ENCODE; :JSON: always
;;;; JSON-encoded (a string becomes a JSON string), and a queried value must
;;;; parse as JSON; :RAW: only strings and octet vectors are accepted; a
;;;; function: a predicate that must return true for the data (and for the
;;;; queried string), else :INVALID-INPUT.

(in-package #:streamdb)

(define-condition dcf-error (error)
  ((code :initarg :code :reader dcf-error-code
         :documentation "One of :IO :NOT-FOUND :INVALID-INPUT :PANIC :TRANSACTION.")
   (c-code :initarg :c-code :initform nil :reader dcf-error-c-code
           :documentation "The StreamDb C return code, or NIL for a Lisp-side failure.")
   (message :initarg :message :initform nil :reader dcf-error-message)
   (cause :initarg :cause :initform nil :reader dcf-error-cause
          :documentation "The condition that caused this one, if any."))
  (:report (lambda (c s)
             (format s "DCF database error ~S~@[ (StreamDb code ~D)~]~@[: ~A~]"
                     (dcf-error-code c) (dcf-error-c-code c) (dcf-error-message c))))
  (:documentation "The condition DCF's persistence calls signal."))

(defun dcf-code (c-code)
  "DCF's code for a StreamDb C return code."
  (case c-code
    (-1 :io)                            ; I/O
    (-2 :not-found)                     ; not found
    (-3 :invalid-input)                 ; invalid argument
    (-4 :panic)                         ; internal error
    (-5 :transaction)                   ; transaction misuse
    (-6 :io)                            ; corrupt: the stored bytes are bad
    (-7 :io)                            ; locked by another process
    (-8 :invalid-input)                 ; document too large
    (-9 :io)                            ; database or disk full
    (-10 :invalid-input)                ; handle closed / used after fork
    (-11 :panic)                        ; out of memory
    (-12 :transaction)                  ; busy: open readers or writers
    (-13 :invalid-input)                ; write on a read-only handle
    (-14 :io)                           ; incompatible file
    (-15 :io)                           ; not a StreamDb file
    (-16 :io)                           ; an earlier write/sync failed
    (-17 :io)                           ; wrong key / failed authentication
    (-18 :invalid-input)                ; unsupported feature
    (-19 :invalid-input)                ; path bound to another document
    (-20 :transaction)                  ; request cancelled
    (-21 :io)                           ; a memory-only read needs the disk
    (t :panic)))

(defun dcf-fail (code message &optional cause c-code)
  (error 'dcf-error :code code :message message :cause cause :c-code c-code))

(defmacro with-dcf-errors (&body body)
  "Runs BODY, turning every error into a DCF-ERROR."
  `(handler-case (progn ,@body)
     (dcf-error (e) (error e))
     (streamdb-error (e)
       (dcf-fail (dcf-code (streamdb-error-code e))
                 (or (streamdb-error-message e) (princ-to-string e))
                 e (streamdb-error-code e)))
     (streamdb-library-missing (e)
       (dcf-fail :io (princ-to-string e) e))
     (babel-encodings:character-coding-error (e)
       (dcf-fail :invalid-input (format nil "not valid text: ~A" e) e))
     (type-error (e)
       (dcf-fail :invalid-input (princ-to-string e) e))
     (storage-condition (e)
       (dcf-fail :panic (princ-to-string e) e))
     (error (e)
       (dcf-fail :panic (princ-to-string e) e))))

;;; ------------------------------------------------------------------------
;;; Nodes

(defgeneric node-database (node)
  (:documentation "The DATABASE holding NODE's state.  DCF defines a method for
its node class; a DATABASE is its own node.")
  (:method ((node database)) node)
  (:method (node)
    (dcf-fail :invalid-input
              (format nil "no StreamDb database for node ~S (define a NODE-DATABASE method)"
                      node))))

(defun resolve-node (node)
  (let ((db (node-database node)))
    (unless (typep db 'database)
      (dcf-fail :invalid-input
                (format nil "NODE-DATABASE of ~S returned ~S, not a database" node db)))
    db))

;;; ------------------------------------------------------------------------
;;; Schemas

(defun json-encode (object)
  "OBJECT as JSON text (YASON:ENCODE); an object YASON cannot encode is :INVALID-INPUT."
  ;; A heap string stream, not WITH-OUTPUT-TO-STRING: the condition YASON
  ;; signals may refer to the stream, and it is printed after unwinding.
  (handler-case
      (let ((s (make-string-output-stream)))
        (yason:encode object s)
        (get-output-stream-string s))
    (error (e)
      (dcf-fail :invalid-input
                (format nil "cannot JSON-encode a ~S: ~A" (type-of object) e) e))))

(defgeneric encode-for-schema (schema data)
  (:documentation "The string or octet vector DCF-DB-INSERT stores for DATA under SCHEMA.")
  (:method (schema data)
    (declare (ignore schema))
    (if (or (stringp data) (octet-vector-p data))
        data
        (json-encode data)))
  (:method ((schema (eql :json)) data)
    (json-encode data))
  (:method ((schema (eql :raw)) data)
    (if (or (stringp data) (octet-vector-p data))
        data
        (dcf-fail :invalid-input
                  (format nil "schema :RAW takes a string or an octet vector, not ~S"
                          (type-of data)))))
  (:method ((schema function) data)
    (unless (funcall schema data)
      (dcf-fail :invalid-input "the data does not satisfy the schema predicate"))
    (call-next-method)))

(defgeneric decode-for-schema (schema octets)
  (:documentation "The string DCF-DB-QUERY returns for the stored OCTETS under SCHEMA.")
  (:method (schema octets)
    (declare (ignore schema))
    (octets-string octets :utf-8))
  (:method ((schema (eql :json)) octets)
    (let ((text (octets-string octets :utf-8)))
      (handler-case (yason:parse text)
        (error (e)
          (dcf-fail :invalid-input (format nil "stored value is not JSON: ~A" e) e)))
      text))
  (:method ((schema function) octets)
    (let ((text (call-next-method)))
      (unless (funcall schema text)
        (dcf-fail :invalid-input "the stored value does not satisfy the schema predicate"))
      text)))

;;; ------------------------------------------------------------------------
;;; The five calls

(defun dcf-db-insert (node path data &key schema)
  "Stores DATA (string, octet vector, or any object, JSON-encoded) at PATH as a
new version of the document.  Returns T; signals DCF-ERROR on failure."
  (with-dcf-errors
    (let ((db (resolve-node node)))
      (write-document db path (encode-for-schema schema data))
      t)))

(defun dcf-db-query (node path &key schema)
  "The value at PATH as a string decoded from UTF-8.  Signals DCF-ERROR (code
:NOT-FOUND when nothing is stored at PATH)."
  (with-dcf-errors
    (let ((db (resolve-node node)))
      (decode-for-schema schema (get-document db path)))))

(defun dcf-db-delete (node path)
  "Deletes the value at PATH.  Returns T; signals DCF-ERROR (:NOT-FOUND when
nothing is stored at PATH)."
  (with-dcf-errors
    (delete-document (resolve-node node) path)
    t))

(defun dcf-db-search (node prefix)
  "Every path starting with PREFIX, in byte order, as a list of strings."
  (with-dcf-errors
    (search (resolve-node node) prefix)))

(defun dcf-db-flush (node)
  "Makes every committed write durable.  Returns T."
  (with-dcf-errors
    (flush (resolve-node node))
    t))
