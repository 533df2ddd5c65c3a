"""Learned policies: Gymnasium environments over the simulator, training, export and loading.

``import edgesched.learn.env`` registers ``edgesched/Routing-v0`` with Gymnasium (``pip install
'edgesched[learn]'``). The exported policies (:mod:`edgesched.learn.scorer`) need only numpy.
"""
