"""Sphinx configuration: pydata theme, numpydoc, autosummary API pages, sphinx-gallery."""

import os

import numlab

project = "numlab"
copyright = "2026, the numlab developers"
version = release = numlab.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
# numpydoc validation of every public docstring: missing sections and bad formatting fail the
# build (warnings are errors): parameters and returns documented, with types and descriptions.
numpydoc_validation_checks = {
    "GL06", "GL07", "PR01", "PR02", "PR03", "PR04", "PR07", "PR10",
    "RT01", "RT02", "RT03", "SS03", "SS05",
}
# Frozen dataclass results (OTResult, CCAResult, Sample, ...) document their fields, which
# are also their constructor's parameters, under Attributes: PR01 ("parameters not
# documented") does not apply to a docstring that has an Attributes section and no
# Parameters section. (Overrides are regexes searched in the raw docstring.)
numpydoc_validation_overrides = {
    "PR01": [r"(?m)\A(?![\s\S]*^Parameters\n-+$)[\s\S]*^Attributes\n-+$"],
}
# The estimators' class pages list the methods they inherit from scikit-learn's
# BaseEstimator and mixins; those docstrings are scikit-learn's, not ours to validate.
numpydoc_validation_exclude = {
    r"\.(fit_transform|get_feature_names_out|get_metadata_routing|get_params|set_output"
    r"|set_params)$",
}

# No intersphinx: the build machines have no internet, and the docs build with warnings as errors.

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    # Each tutorial must stay fast enough for every docs build.
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
}
if os.environ.get("NUMLAB_DOCS_NO_GALLERY"):
    sphinx_gallery_conf["plot_gallery"] = "False"

html_theme = "pydata_sphinx_theme"
html_title = f"numlab {version}"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
html_static_path = []
templates_path = []
exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.ipynb"]
