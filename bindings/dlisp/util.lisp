;;;; util.lisp -- octets, paths, ids and foreign buffers.

(in-package #:streamdb)

(deftype octets () '(simple-array (unsigned-byte 8) (*)))

(defun octet-vector-p (x)
  (typep x '(vector (unsigned-byte 8))))

(defun ensure-simple-octets (vector)
  "VECTOR as a (SIMPLE-ARRAY (UNSIGNED-BYTE 8) (*)), copied only when needed."
  (if (typep vector 'octets)
      vector
      (let ((copy (make-array (length vector) :element-type '(unsigned-byte 8))))
        (replace copy vector)
        copy)))

(defun encoding-of (external-format)
  "A babel encoding name for an external-format designator (:utf-8, :latin-1,
(:utf-8 ...) or T for UTF-8)."
  (let ((ef (if (consp external-format) (first external-format) external-format)))
    (case ef
      ((t :default :utf8) :utf-8)
      (t ef))))

(defun string-octets (string &optional (external-format :utf-8))
  (babel:string-to-octets string :encoding (encoding-of external-format)))

(defun octets-string (octets &optional (external-format :utf-8))
  (babel:octets-to-string octets :encoding (encoding-of external-format)))

(defun path-octets (path)
  "The UTF-8 bytes of PATH, a string (or a pathname, by its native namestring)."
  (etypecase path
    (string (string-octets path))
    (pathname (string-octets (sb-ext:native-namestring path)))))

(defmacro with-octets-pointer ((ptr octets) &body body)
  "Binds PTR to the address of the simple octet vector OCTETS, pinned for BODY."
  `(cffi:with-pointer-to-vector-data (,ptr ,octets)
     ,@body))

(defmacro with-path ((ptr len path) &body body)
  "Binds PTR and LEN to the UTF-8 bytes of PATH for the duration of BODY."
  (let ((octs (gensym "PATH")))
    `(let* ((,octs (path-octets ,path))
            (,len (length ,octs)))
       (declare (type octets ,octs) (ignorable ,len))
       (with-octets-pointer (,ptr ,octs)
         ,@body))))

(defun copy-foreign-octets (pointer count)
  "A fresh octet vector holding COUNT bytes at POINTER."
  (let ((result (make-array count :element-type '(unsigned-byte 8))))
    (when (plusp count)
      (with-octets-pointer (dst result)
        (cffi:foreign-funcall "memcpy" :pointer dst :pointer pointer :size count :pointer)))
    result))

(defun take-foreign-buffer (pointer len)
  "Copies and frees (streamdb_free) a buffer handed out by the library."
  (unwind-protect (copy-foreign-octets pointer len)
    (unless (cffi:null-pointer-p pointer)
      (%free pointer))))

(defun take-foreign-paths (array count)
  "The COUNT UTF-8 strings of a path array, freed with streamdb_free_paths."
  (unwind-protect
       (loop for i below count
             collect (cffi:foreign-string-to-lisp (cffi:mem-aref array :pointer i)
                                                  :encoding :utf-8))
    (unless (cffi:null-pointer-p array)
      (%free-paths array count))))

;;; Document ids: 16 octets.  Functions taking an id accept the octets or the
;;; UUID text form ("0190c2a4-5b7e-7c3d-8e2f-...").

(deftype document-id () '(simple-array (unsigned-byte 8) (16)))

(defun id-to-string (id)
  "The canonical UUID text of a 16-octet document id."
  (let ((id (coerce-id id)))
    (with-output-to-string (s)
      (dotimes (i 16)
        (when (member i '(4 6 8 10)) (write-char #\- s))
        (format s "~(~2,'0x~)" (aref id i))))))

(defun string-to-id (string)
  "Parses a UUID text (hyphens optional) into a 16-octet document id."
  (let* ((hex (remove #\- string))
         (id (make-array 16 :element-type '(unsigned-byte 8))))
    (unless (and (= (length hex) 32) (every (lambda (c) (digit-char-p c 16)) hex))
      (error 'streamdb-invalid :code -3 :operation "string-to-id"
                               :message (format nil "not a UUID: ~S" string)))
    (dotimes (i 16 id)
      (setf (aref id i) (parse-integer hex :start (* 2 i) :end (+ 2 (* 2 i)) :radix 16)))))

(defun coerce-id (id)
  (cond ((typep id 'document-id) id)
        ((stringp id) (string-to-id id))
        ((and (octet-vector-p id) (= (length id) 16))
         (let ((copy (make-array 16 :element-type '(unsigned-byte 8))))
           (replace copy id)
           copy))
        (t (error 'streamdb-invalid :code -3 :operation "coerce-id"
                                    :message (format nil "not a document id: ~S" id)))))

(defmacro with-id-pointer ((ptr id) &body body)
  (let ((v (gensym "ID")))
    `(let ((,v (coerce-id ,id)))
       (with-octets-pointer (,ptr ,v) ,@body))))
