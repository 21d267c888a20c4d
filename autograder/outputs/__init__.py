"""TRUSTED writers for people and platforms: reports, feedback pages, class sheets, nbgrader's
gradebook, Gradescope and LMS exports."""
