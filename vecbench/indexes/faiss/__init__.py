"""Every faiss-backed index: one adapter (:mod:`.adapter`) and its families as data.

A family (:class:`.adapter.Family`) says how to make its faiss index (a factory string, or a
constructor), how many vectors training needs, how its search parameters become a faiss
``SearchParameters`` object, and what to record; :func:`.adapter.faiss_adapter` turns it into
the class the registry names (``faiss_hnsw``, ``faiss_ivf``, ...). Bytes are read from the
built index (:mod:`.storage`), whatever the family.
"""
